// Command tributary is the CDK app: it reads the settings from CDK context and
// synthesizes the pipeline stack. Run it through the CDK CLI (`npx cdk synth`).
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	tributary "github.com/tributary/tributary/internal/app"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	ctx, _ := app.Node().GetAllContext(nil).(map[string]any)
	cfg, err := config.Load(ctx)
	if err != nil {
		// One line, no stack trace: the CLI shows it as the reason synth failed.
		fmt.Fprintln(os.Stderr, "tributary: invalid configuration: "+err.Error())
		jsii.Close()
		os.Exit(1)
	}
	if _, err := tributary.Build(app, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "tributary: "+err.Error())
		jsii.Close()
		os.Exit(1)
	}
	app.Synth(nil)
}
