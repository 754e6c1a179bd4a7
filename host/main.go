// Command capuchin is the Capuchin HTTP/1.1 server.
//
//	capuchin [-c CONFIG_DIR] [-t]
//
// -c picks the configuration directory (default "conf"); -t checks the
// configuration and exits, as nginx -t does. SIGHUP re-reads the
// configuration; SIGTERM and SIGINT drain and exit.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("capuchin", flag.ContinueOnError)
	dir := fs.String("c", "conf", "configuration directory")
	test := fs.Bool("t", false, "check the configuration and exit")
	version := fs.Bool("v", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Println("capuchin " + server.Version)
		return 0
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "capuchin: configuration error: %v\n", err)
		return 1
	}
	if *test {
		fmt.Printf("capuchin: configuration %s is valid\n", cfg.Dir)
		return 0
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:   "capuchin",
		Output: os.Stderr,
		Level:  hclog.LevelFromString(os.Getenv("CAPUCHIN_LOG_LEVEL")),
	})
	if err := serve(*dir, cfg, log); err != nil {
		log.Error("exiting", "error", err)
		return 1
	}
	return 0
}
