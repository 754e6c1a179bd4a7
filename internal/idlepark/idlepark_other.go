//go:build !linux

package idlepark

import "time"

// Set parks sockets where epoll is available (Linux); here Park reports
// false and every idle connection waits on its own goroutine.
type Set struct{}

// Slot is a parked socket's place in a Set.
type Slot struct{ Owner Owner }

// Owner is what a Slot belongs to.
type Owner interface{ Wake(expired bool) }

func (p *Set) Start() bool                         { return false }
func (p *Set) Park(*Slot, int, time.Duration) bool { return false }
func (p *Set) Take(*Slot) bool                     { return false }
func (p *Set) Socket(*Slot) int                    { return -1 }
func (p *Set) Len() int                            { return 0 }
func (p *Set) Stop()                               {}
