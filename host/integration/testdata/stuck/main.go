// Command stuck is a test plugin of package integration whose stage-40 and
// stage-50 hooks never return, as a plugin wedged on a full disk would. The
// host must keep serving requests regardless and still stop it.
package main

import (
	"time"

	"github.com/capuchin/capuchin/api"
)

type stuck struct{}

func (stuck) Info() api.Info { return api.Info{Name: "stuck", Version: "0.1"} }

func (stuck) Done(*api.Record) { time.Sleep(time.Hour) }

func (stuck) Closed(*api.Conn) { time.Sleep(time.Hour) }

func main() { api.Serve(stuck{}) }
