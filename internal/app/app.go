// Package app builds every stack of the Tributary app from its settings and
// applies the compliance checks to all of them. app.go and the tests share it,
// so the tests check exactly what `cdk synth` builds.
package app

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/internal/gobuild"
	"github.com/tributary/tributary/monitoringstack"
	"github.com/tributary/tributary/pipeline"
	"github.com/tributary/tributary/producerstack"
)

// Stacks are the stacks Build created; Producer is nil without the host.
type Stacks struct {
	Pipeline   *pipeline.Stack
	Producer   *producerstack.Stack
	Monitoring *monitoringstack.Stack
}

// Build adds the stacks to app and checks them with cdk-nag's AwsSolutions
// pack: an unsuppressed error fails synth, a warning shows in its output.
// With the producer host, it cross-compiles the producer for the host.
func Build(app awscdk.App, cfg config.Config) (*Stacks, error) {
	s := &Stacks{Pipeline: pipeline.New(app, cfg, nil)}
	if cfg.DeployProducerHost() {
		instanceType := cfg.ProducerHostProps().InstanceType
		if instanceType == "" {
			instanceType = producerhost.DefaultInstanceType
		}
		dir, err := gobuild.Linux("./cmd/producer", producerhost.Architecture(instanceType))
		if err != nil {
			return nil, err
		}
		s.Producer = producerstack.New(app, cfg, s.Pipeline.IngestAPI, dir)
	}
	s.Monitoring = monitoringstack.New(app, cfg, s.Pipeline, s.Producer)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return s, nil
}
