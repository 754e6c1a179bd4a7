//go:build !linux

package main

import "errors"

// loop is the epoll loop, on Linux only.
type loop struct{}

func newLoop(string, *router) (*loop, error) { return nil, errors.New("-loop epoll needs Linux") }

func (*loop) run() error { return nil }
func (*loop) stop()      {}
func (*loop) port() int  { return 0 }
