// Command tributary is the CDK app: it reads the settings from CDK context
// (cdk.json and -c key=value) and synthesizes the stacks. Run it through the
// CDK CLI (`./cdk synth`).
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/tributary"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(&awscdk.AppProps{
		// Bundle every stack, even when the CLI selects only some: the
		// producer host's instance is replaced when its binary changes (its
		// logical id hashes the binary's asset hash), and the monitoring stack
		// references that logical id. A skipped build would give a stand-in
		// hash, and `cdk deploy <Monitoring stack>` would point at an instance
		// that does not exist.
		PostCliContext: &map[string]any{"aws:cdk:bundling-stacks": []string{"**"}},
	})
	ctx, _ := app.Node().GetAllContext(nil).(map[string]any)
	settings, err := tributary.LoadSettings(ctx)
	if err != nil {
		// One line, no stack trace: the CLI shows it as the reason synth failed.
		fmt.Fprintln(os.Stderr, "tributary: invalid configuration: "+err.Error())
		jsii.Close()
		os.Exit(1)
	}
	tributary.NewStacks(app, settings)
	app.Synth(nil)
}
