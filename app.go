// Command tributary is the CDK app: it reads the settings from CDK context
// (cdk.json and -c key=value) and synthesizes the stacks. Run it through the
// CDK CLI (`./cdk synth`).
package main

import (
	"fmt"
	"os"

	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/tributary"
)

func main() {
	defer jsii.Close()
	app := tributary.NewApp(nil)
	ctx, _ := app.Node().GetAllContext(nil).(map[string]any)
	settings, err := tributary.LoadSettings(ctx)
	if err != nil {
		// One line, no stack trace: the CLI shows it as the reason synth failed.
		fmt.Fprintln(os.Stderr, "tributary: invalid configuration: "+err.Error())
		jsii.Close()
		os.Exit(1)
	}
	if notice := settings.RetentionNotice(); notice != "" {
		fmt.Fprintln(os.Stderr, notice) // once per synth: the CLI shows the app's stderr
	}
	tributary.NewStacks(app, settings)
	app.Synth(nil)
}
