package proxy

import (
	"io"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/status"
)

// maxStatusBody bounds a request body sent to the status page (discarded).
const maxStatusBody = 64 << 10

// serveStatus answers the StatisticsURL: GET and HEAD only.
func (p *Proxy) serveStatus(r *forward.Request) Result {
	req := r.Req
	res := Result{Result: forward.Result{Status: 200, Close: !r.KeepAlive || req.Close}}
	if req.HasBody() {
		var body http1.Body
		if err := body.ResetRequest(r.BR, req, maxStatusBody); err != nil {
			res.Close = true
		} else if n, err := io.Copy(io.Discard, &body); err != nil {
			res.Close, res.BytesIn = true, n
		} else {
			res.BytesIn = n
		}
	}
	var body []byte
	ctype := "text/html; charset=utf-8"
	switch {
	case req.Method != "GET" && req.Method != "HEAD":
		res.Status, body = 405, http1.ErrorPage(405, "")
	case formatJSON(req.Query):
		body, ctype = status.JSON(p.Snapshot()), "application/json"
	default:
		body = status.HTML(p.Snapshot())
	}
	h := http1.ResponseHead{Status: res.Status, Date: p.clock.Date(), Server: r.Server,
		Length: int64(len(body)), Method: req.Method, Minor: req.Minor, Close: res.Close}
	b := h.AppendStart(nil)
	b = http1.AppendField(b, "Content-Type", ctype)
	b = http1.AppendField(b, "Cache-Control", "no-store")
	if res.Status == 405 {
		b = http1.AppendField(b, "Allow", "GET, HEAD")
	}
	b, fr := h.AppendEnd(b)
	if fr != http1.FrameNone {
		b = append(b, body...)
	}
	r.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
	n, err := r.Conn.Write(b)
	res.BytesOut, res.Err = int64(n), err
	if err != nil {
		res.Close = true
	}
	return res
}

// formatJSON reports whether the query asks for format=json.
func formatJSON(q string) bool {
	for q != "" {
		var kv string
		kv, q, _ = cut(q, '&')
		if http1.EqualFold(kv, "format=json") {
			return true
		}
	}
	return false
}

func cut(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Snapshot returns the current state of every entry and server.
func (p *Proxy) Snapshot() *status.Page {
	now := time.Now()
	pg := &status.Page{Time: now}
	for _, e := range p.entries {
		se := status.Entry{Where: e.cfg.Where, Balancer: e.pol.Name(), Match: e.cfg.MatchSrc,
			AttemptsCount: e.cfg.AttemptsCount, OfflineTimeout: e.cfg.OfflineTimeout.String()}
		slots := e.group.Slots()
		for _, s := range e.group.Servers() {
			st := s.Stats(now)
			ss := status.Server{Name: st.Name, Addr: st.Addr, State: "online", Active: st.Active,
				Idle: st.Idle, Requests: st.Requests, Failures: st.Failures, Stray: st.Stray, Retries: st.Retries,
				Consecutive: st.Consecutive}
			for i, t := range slots.Servers {
				if t == s {
					ss.Weight += slots.Weight(i) // repetition and weight=N
				}
			}
			if !st.Online {
				ss.State, ss.OfflineUntil = "offline", &st.OfflineUntil
			}
			se.Servers = append(se.Servers, ss)
		}
		pg.Entries = append(pg.Entries, se)
	}
	return pg
}
