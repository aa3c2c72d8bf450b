package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set by release builds with -ldflags "-X main.version=v1.2.3";
// otherwise the build info answers.
var version = ""

// versionString names this binary: the release version, else the module
// version Go recorded (a tag under `go install …@v1.2.3`), and the VCS
// revision and time when the binary was built from a checkout, marked
// "+dirty" when the tree had local changes.
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, info)
}

func describeBuild(release string, info *debug.BuildInfo) string {
	v := release
	if v == "" && info != nil && info.Main.Version != "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if info == nil {
		return v
	}
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{v}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, "revision "+rev)
	}
	if at != "" {
		parts = append(parts, "built from a commit of "+at)
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, ", ")
}

// shortVersion is the version alone, for a User-Agent.
func shortVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}

// buildInfo is what keyward_build_info names: the version shortVersion
// gives, the full VCS revision ("+dirty" for a modified tree) and the Go
// version.
func buildInfo() (version, revision, goVersion string) {
	version, goVersion = shortVersion(), runtime.Version()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, "", goVersion
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if revision != "" && dirty {
		revision += "+dirty"
	}
	return version, revision, goVersion
}
