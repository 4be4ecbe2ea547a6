// Package producerstack is the stack of the producer host: an EC2 instance
// running the Tributary producer against the pipeline's ingest API.
package producerstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/producerhost"
	"github.com/tributary/tributary/internal/stack"
)

// Stack is the producer stack.
type Stack struct {
	awscdk.Stack
	Host *producerhost.ProducerHost
}

// New builds the stack named cfg.ProducerStackName() for the API; binaryDir
// holds the producer built for the host's architecture.
func New(scope constructs.Construct, cfg config.Config, api *ingestapi.IngestAPI, binaryDir string) *Stack {
	s := stack.New(scope, cfg.ProducerStackName(), "Tributary: an EC2 host running the producer against the ingest API", nil)
	p := cfg.ProducerHostProps()
	p.URL, p.InvokeArns, p.BinaryDir = api.Api.UrlForPath(api.Events.Path()), api.InvokeArns, binaryDir
	if api.APIKey != nil {
		p.APIKeyID = api.APIKey.KeyId()
	}
	host := producerhost.New(s, "Host", &p)

	id := host.Instance.InstanceId()
	out := func(name string, value *string, description string) {
		awscdk.NewCfnOutput(s, jsii.String(name), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	out("InstanceId", id, "The producer host")
	out("SessionCommand", awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("aws ssm start-session --target "), id}),
		"Opens a shell on the host through Session Manager (needs the Session Manager plugin)")
	out("LogsCommand", awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String(`aws ssm start-session --document-name AWS-StartInteractiveCommand --parameters command="journalctl -u tributary-producer -f" --target `), id}),
		"Follows the producer's logs on the host")
	stack.Finish(s, cfg.Retain())
	return &Stack{Stack: s, Host: host}
}
