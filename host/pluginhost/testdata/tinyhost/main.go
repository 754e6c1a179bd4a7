// Command tinyhost starts one plugin under pluginhost and waits forever;
// the test kills it with SIGKILL and checks that the plugin dies too.
//
//	tinyhost PLUGIN CONFIG
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/pluginhost"
)

func main() {
	spec := config.PluginSpec{Name: filepath.Base(os.Args[1]), Path: os.Args[1], Config: os.Args[2], Where: "tinyhost"}
	if _, err := pluginhost.Start([]config.PluginSpec{spec}, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}
