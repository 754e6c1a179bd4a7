package config

import (
	"regexp/syntax"
	"strings"
)

type syntaxError = syntax.Error

// Balancer names a server selection policy.
type Balancer uint8

const (
	Naive Balancer = iota
	FirstAlive
	RoundRobin        // lockless round robin
	LockingRoundRobin // round robin under a mutex
	LeastConnections
	SourceHash
)

var balancerNames = [...]string{"naive", "first-alive", "roundrobin", "lockingroundrobin",
	"leastconnections", "sourcehash"}

// String returns Monkey's name of the balancer.
func (b Balancer) String() string {
	if int(b) < len(balancerNames) {
		return balancerNames[b]
	}
	return "unknown"
}

// balancerAliases maps a normalised spelling (lower case, without '-', '_'
// and spaces) to its balancer.
var balancerAliases = map[string]Balancer{
	"naive":                      Naive,
	"firstalive":                 FirstAlive,
	"roundrobin":                 RoundRobin,
	"locklessroundrobin":         RoundRobin,
	"lockingroundrobin":          LockingRoundRobin,
	"lockedroundrobin":           LockingRoundRobin,
	"leastconnections":           LeastConnections,
	"leastconnection":            LeastConnections,
	"leastconn":                  LeastConnections,
	"sourcehash":                 SourceHash,
	"weightedroundrobin":         RoundRobin,
	"locklessweightedroundrobin": RoundRobin,
}

// ParseBalancer accepts Monkey's names and their obvious variants, case-
// insensitive, with or without '-', '_' or spaces: "First-Alive",
// "FirstAlive", "Round-Robin", "Lockless-Round-Robin", "Least-Connections"...
func ParseBalancer(v string) (Balancer, bool) {
	norm := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', '\t':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, v)
	b, ok := balancerAliases[norm]
	return b, ok
}

func balancerChoices() string {
	return "Naive, First-Alive, Round-Robin (Lockless-Round-Robin), Locking-Round-Robin, " +
		"Least-Connections or Source-Hash"
}
