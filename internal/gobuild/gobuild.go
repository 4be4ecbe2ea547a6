// Package gobuild cross-compiles a command of this module into a static
// binary during synth, without Docker, so that it can ship as a CDK asset.
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	built = map[string]string{} // pkg/goarch -> directory
)

// Linux builds pkg (such as "./cmd/producer") for linux/goarch into a fresh
// directory holding only the binary, named after the package, and returns
// the directory. The build is reproducible (-trimpath, no build id), so the
// asset's hash changes only when the code or the Go version does.
func Linux(pkg, goarch string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	key := pkg + "/" + goarch
	if dir, ok := built[key]; ok {
		return dir, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tributary-"+filepath.Base(pkg)+"-"+goarch+"-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=",
		"-o", filepath.Join(dir, filepath.Base(pkg)), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s for linux/%s: %v\n%s", pkg, goarch, err, out)
	}
	built[key] = dir
	return dir, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the Tributary module (no go.mod found)")
	}
	return filepath.Dir(gomod), nil
}
