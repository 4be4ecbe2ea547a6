// Package nodetools gives tests the pinned Node tools of .tools/ (its
// package-lock.json): it installs them once when one is missing, so `go
// test` works in a fresh clone, and runs jq 1.6 from there, so the tests
// that evaluate the delivery stream's jq query run on any machine, whatever
// jq (if any) it has. Test support only.
package nodetools

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// Dir is the absolute path of the project's .tools folder.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".tools")
}

// Install runs `npm ci` in .tools when a package of its package.json is not
// installed. Test binaries of several packages may call it at once: a lock
// file makes them take turns, and the later ones find everything installed.
func Install() error {
	dir := Dir()
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	var pkg struct{ DevDependencies map[string]string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return fmt.Errorf(".tools/package.json: %v", err)
	}
	missing := false
	for name := range pkg.DevDependencies {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", name, "package.json")); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in .tools (needs Node.js 20 or newer with npm): %v\n%s", err, out)
	}
	return nil
}

// jqProcess is one node running jq16.js, shared by the whole test binary;
// it exits when the binary does (its stdin closes).
type jqProcess struct {
	mu  sync.Mutex
	in  io.Writer
	out *bufio.Reader
}

var startJQ = sync.OnceValues(func() (*jqProcess, error) {
	if err := Install(); err != nil {
		return nil, err
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("node", filepath.Join(filepath.Dir(file), "jq16.js"))
	cmd.Env = append(os.Environ(), "TZ=UTC") // the build's strptime and mktime use local time
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node (Node.js 20 or newer): %v", err)
	}
	return &jqProcess{in: in, out: bufio.NewReader(out)}, nil
})

// JQ16 runs jq 1.6 as `jq -c query` on input, as Firehose runs a
// MetadataExtractionQuery with JsonParsingEngine JQ-1.6, and returns what
// it prints, or an error holding jq's message ("jq: error (at <stdin>:0):
// ..."). The jq is jq-web 0.5.1: jq 1.6's C source built with Emscripten,
// whose C library differs from glibc's in date parsing of malformed times;
// TestJQ16MatchesRealJQ proves where it agrees with the real jq 1.6.
func JQ16(query, input string) (string, error) {
	p, err := startJQ()
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"query": query, "input": input})
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		return "", fmt.Errorf("jq16.js: %v", err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("jq16.js: %v", err)
	}
	var answer struct {
		Out   string
		Error *string
	}
	if err := json.Unmarshal(line, &answer); err != nil {
		return "", fmt.Errorf("jq16.js answered %q: %v", line, err)
	}
	if answer.Error != nil {
		return "", errors.New(*answer.Error)
	}
	return answer.Out, nil
}
