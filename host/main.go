// Command capuchin is the Capuchin HTTP/1.1 server.
//
//	capuchin [-c CONFIG_DIR] [-t]
//
// -c picks the configuration directory (default "conf"); -t checks the
// configuration and exits, as nginx -t does: everything start-up checks,
// each plugin's configuration included (the plugins are started, handed
// their configuration files and stopped, without serving). SIGHUP re-reads the
// configuration; SIGUSR1 has every plugin reopen its files (log rotation);
// SIGTERM and SIGINT drain and exit.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/server"
	"github.com/capuchin/capuchin/internal/pprofenv"
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
	level := hclog.LevelFromString(os.Getenv("CAPUCHIN_LOG_LEVEL"))
	if *test {
		level = hclog.Error // only what a plugin reports as wrong
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "capuchin", Output: os.Stderr, Level: level})
	if !*test {
		pprofenv.Start(pprofenv.HostVar, log) // off unless set
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return configError(err)
	}
	// Start-up checks the plugins' configurations by starting them; so
	// does -t, which then stops them without serving.
	plugins, err := startPlugins(cfg, log)
	if err != nil {
		return configError(err)
	}
	if *test {
		stopPlugins(plugins, log)
		fmt.Printf("capuchin: configuration %s is valid\n", cfg.Dir)
		return 0
	}
	if err := serve(*dir, cfg, plugins, log); err != nil {
		log.Error("exiting", "error", err)
		return 1
	}
	return 0
}

// configError prints a configuration error as one line,
// "file:line: key: what is wrong", and returns the exit status.
func configError(err error) int {
	fmt.Fprintf(os.Stderr, "capuchin: configuration error: %v\n", err)
	return 1
}
