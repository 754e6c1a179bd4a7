//go:build !linux

package main

import (
	"errors"
	"net"
)

// errLinux: the epoll, raw and featured loops use Linux's system calls.
var errLinux = errors.New("-loop epoll, raw and featured need Linux")

// loop is the epoll loop, on Linux only.
type loop struct{}

func newLoop(string, *router) (*loop, error) { return nil, errLinux }

func (*loop) run() error { return nil }

func serveRaw(net.Listener, *router) error { return errLinux }

func serveFeatured(net.Listener, *router) error { return errLinux }
