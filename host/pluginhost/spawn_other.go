//go:build !linux

package pluginhost

import "os/exec"

// setDeathSignal does nothing here: the SDK's watchdog pipe ends plugins.
func setDeathSignal(*exec.Cmd) {}
