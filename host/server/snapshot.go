package server

import (
	"crypto/tls"
	"net"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/static"
	"github.com/capuchin/capuchin/internal/contract"
)

// snapshot is what one configuration means to the connection loop. It is
// immutable; a reload builds a new one.
type snapshot struct {
	cfg    *config.Config
	limits http1.Limits
	server string // Server field
	static *static.Handler
	sites  []*config.Site
	// maxConns is the connection cap: MaxConnections, or derived from the
	// descriptor limit; maxShed bounds the connections shed at once.
	maxConns, maxShed int
	byName            map[string]*config.Site
	tls               *tls.Config // for each TLS hello: certificates by SNI, client CA
	// giveBack goes with every lease: the host's own paths (MetricsURL).
	giveBack []contract.Claims
}

func newSnapshot(cfg *config.Config) *snapshot {
	sv := &cfg.Server
	maxConns, maxShed := connLimits(sv.MaxConnections)
	sn := &snapshot{
		maxConns: maxConns,
		maxShed:  maxShed,
		cfg:      cfg,
		limits:   http1.Limits{MaxHeadBytes: sv.MaxHeaderSize},
		server:   serverField(sv.HideVersion),
		static: &static.Handler{
			IndexFiles:     sv.IndexFiles,
			SymLink:        sv.SymLink,
			DefaultMIME:    sv.DefaultMimeType,
			MIME:           cfg.MIME,
			FileCacheValid: sv.FileCacheValid,
		},
		sites:    cfg.Sites,
		tls:      newTLSConfig(cfg),
		byName:   map[string]*config.Site{},
		giveBack: hostGiveBack(sv),
	}
	for _, site := range cfg.Sites {
		for _, n := range site.Names {
			if _, dup := sn.byName[n]; !dup {
				sn.byName[n] = site
			}
		}
	}
	return sn
}

// site picks the virtual host for a Host value; unknown names get the
// default (first) site.
func (sn *snapshot) site(host string) *config.Site {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if s, ok := sn.byName[host]; ok {
		return s
	}
	if s, ok := sn.byName[strings.ToLower(host)]; ok {
		return s
	}
	return sn.sites[0]
}

// siteName names a site for the stages: its first ServerName, or its file.
func siteName(s *config.Site) string {
	if len(s.Names) > 0 {
		return s.Names[0]
	}
	return s.File
}
