package producerhost

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// producerPackage is the program the host runs. It is built by import path,
// so the host builds it in any Go module that requires this one.
const producerPackage = "github.com/tributary/tributary/cmd/producer"

// goBuild cross-compiles the producer into the asset's output directory when
// CDK stages the asset during synth: no Docker, no toolchain on the host. The
// build is reproducible (-trimpath, no build id), so the asset's hash changes
// only when the code or the Go version does.
type goBuild struct{ goarch string }

// built holds each architecture's binary once built, so a process that
// synthesizes several hosts (the tests do) builds each architecture once.
var built sync.Map // goarch -> []byte

// TryBundle builds the binary, or panics with go build's output: there is
// no other way to bundle it.
func (b *goBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	out := filepath.Join(*outputDir, "producer")
	if bin, ok := built.Load(b.goarch); ok {
		if err := os.WriteFile(out, bin.([]byte), 0o755); err != nil {
			panic(fmt.Sprintf("producerhost: writing the producer: %v", err))
		}
		return jsii.Bool(true)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, producerPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		panic(fmt.Sprintf("producerhost: go build %s for linux/%s: %v: %s", producerPackage, b.goarch, err, strings.TrimSpace(string(msg))))
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		panic(fmt.Sprintf("producerhost: reading the producer: %v", err))
	}
	built.Store(b.goarch, bin)
	return jsii.Bool(true)
}

// producerDir is the source directory of the producer, which the asset
// names as its source.
var producerDir = sync.OnceValue(func() string {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", producerPackage).Output()
	if err != nil {
		panic(fmt.Sprintf("producerhost: go list %s: %v (the producer is built from source during synth: run synth inside a Go module that requires github.com/tributary/tributary)", producerPackage, err))
	}
	return strings.TrimSpace(string(out))
})
