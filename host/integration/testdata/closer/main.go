// Command closer is a stage-30 test plugin of package integration. It
// claims GET requests on ^/closer and answers Close without setting a
// status, so the host must send its default error page (403). On
// /closer/log it logs one line first, so that tests can find a plugin's
// log line in the host's log.
package main

import "github.com/capuchin/capuchin/api"

type closer struct{}

func (closer) Info() api.Info { return api.Info{Name: "closer", Version: "0.1"} }

func (closer) Claims() api.Claims {
	return api.Claims{Paths: []string{"^/closer"}, Methods: []string{"GET"}}
}

func (closer) Handle(r *api.Request, w *api.ResponseWriter) api.Verdict {
	if r.Path == "/closer/log" {
		api.Logger().Info("closer was asked to log", "marker", "closer-marker-7f3a")
	}
	return api.Close
}

func main() { api.Serve(closer{}) }
