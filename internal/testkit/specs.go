package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VendorSpec finds a vendor's OpenAPI excerpt in the project's shared
// reference folder (../shared/reference/specs beside the repository, as
// CI lays it out). The vendors' text is read from there, never copied into
// the repository. A missing document is an error under CI (CI=true), so
// the validation can never silently stop; elsewhere ok is false and the
// caller runs without it.
func VendorSpec(name string) (path string, ok bool, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false, errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
	path = filepath.Join(filepath.Dir(dir), "shared", "reference", "specs", name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			return "", false, fmt.Errorf("vendor spec %s is required under CI: %w", name, err)
		}
		return "", false, nil
	}
	return path, true, nil
}
