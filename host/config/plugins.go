package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/capuchin/capuchin/api/conf"
)

// Plugins holds the [PLUGINS] section of plugins.load. Keys:
//
//	Directory PATH      where plugin executables live, relative to the
//	                    configuration directory; default "../bin/plugins"
//	Load NAME [CONFIG]  repeatable: start plugin NAME (an executable in
//	                    Directory, or a path); plugins run in Load order.
//	                    Its configuration file is CONFIG, default
//	                    "NAME.conf" in the configuration directory.
//
// A missing plugins.load means no plugins.
type Plugins struct {
	Dir  string
	Load []PluginSpec
}

// PluginSpec is one Load line.
type PluginSpec struct {
	Name   string // the plugin's name: the executable's base name
	Path   string // absolute path of the executable
	Config string // absolute path of its configuration file (may not exist)
	Where  string // file:line of the Load line
}

func loadPlugins(confDir, path string) (Plugins, error) {
	p := Plugins{Dir: filepath.Join(confDir, "..", "bin", "plugins")}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return p, nil
	}
	secs, err := sections(path, "PLUGINS")
	if err != nil {
		return p, err
	}
	sec := secs["PLUGINS"]
	if sec == nil {
		return p, nil
	}
	var loads []conf.Entry
	err = sec.Visit(map[string]func(conf.Entry) error{
		"directory": func(e conf.Entry) error {
			v, err := e.String()
			p.Dir = resolve(confDir, v)
			return err
		},
		"load": func(e conf.Entry) error { loads = append(loads, e); return nil },
	})
	if err != nil {
		return p, err
	}
	for _, e := range loads {
		spec, err := pluginSpec(confDir, p.Dir, e)
		if err != nil {
			return p, err
		}
		for _, q := range p.Load {
			if q.Name == spec.Name {
				return p, e.Errorf("plugin %q is loaded twice (first at %s)", spec.Name, q.Where)
			}
		}
		p.Load = append(p.Load, spec)
	}
	return p, nil
}

func pluginSpec(confDir, pluginDir string, e conf.Entry) (PluginSpec, error) {
	f, err := e.Fields()
	if err != nil {
		return PluginSpec{}, err
	}
	if len(f) > 2 {
		return PluginSpec{}, e.Errorf("want NAME [CONFIG], got %q", e.Value)
	}
	name := filepath.Base(f[0])
	spec := PluginSpec{
		Name:   strings.TrimSuffix(name, filepath.Ext(name)),
		Path:   filepath.Join(pluginDir, f[0]),
		Config: filepath.Join(confDir, name+".conf"),
		Where:  e.File + ":" + itoa(e.Line),
	}
	if strings.ContainsRune(f[0], filepath.Separator) {
		spec.Path = resolve(confDir, f[0])
	}
	if len(f) == 2 {
		spec.Config = resolve(confDir, f[1])
	}
	return spec, checkExecutable(e, spec.Path)
}

// checkExecutable reports a Load line whose plugin is not an executable
// file, so that -t and a reload catch it with the line.
func checkExecutable(e conf.Entry, path string) error {
	fi, err := os.Stat(path)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return e.Errorf("plugin executable %s: %v", path, pe.Err)
	case err != nil:
		return e.Errorf("plugin executable %s: %v", path, err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		return e.Errorf("plugin %s is not an executable file", path)
	}
	return nil
}
