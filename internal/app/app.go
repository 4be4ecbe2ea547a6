// Package app builds every stack of the Tributary app from its settings and
// applies the compliance checks to all of them. app.go and the tests share it,
// so the tests check exactly what `cdk synth` builds.
package app

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/pipeline"
)

// Stacks are the stacks Build created.
type Stacks struct {
	Pipeline *pipeline.Stack
}

// Build adds the stacks to app and checks them with cdk-nag's AwsSolutions
// pack: an unsuppressed error fails synth, a warning shows in its output.
func Build(app awscdk.App, cfg config.Config) *Stacks {
	s := &Stacks{Pipeline: pipeline.New(app, cfg, nil)}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return s
}
