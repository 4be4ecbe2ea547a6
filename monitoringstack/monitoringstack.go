// Package monitoringstack is the stack of the pipeline's dashboard and
// alarms. It is its own stack because it watches both the pipeline and the
// producer host, which depends on the pipeline.
package monitoringstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/constructs/monitoring"
	"github.com/tributary/tributary/internal/stack"
	"github.com/tributary/tributary/pipeline"
	"github.com/tributary/tributary/producerstack"
)

// Stack is the monitoring stack.
type Stack struct {
	awscdk.Stack
	Monitoring *monitoring.Monitoring
}

// New builds the stack named cfg.MonitoringStackName(); producer may be nil.
func New(scope constructs.Construct, cfg config.Config, p *pipeline.Stack, producer *producerstack.Stack) *Stack {
	s := stack.New(scope, cfg.MonitoringStackName(), "Tributary: the pipeline's dashboard and alarms", nil)
	props := cfg.MonitoringProps()
	props.Stage, props.Stream, props.DeliveryStream = p.IngestAPI.Api.DeploymentStage(), p.Stream.Stream, p.DeliveryStream.DeliveryStream
	props.BufferingSeconds = p.DeliveryStream.BufferingSeconds
	if producer != nil {
		props.Instance = producer.Host.Instance
	}
	// The dashboard is named after the pipeline: one per stage, easy to find.
	m := monitoring.New(s, "Monitoring", *p.StackName(), &props)
	awscdk.NewCfnOutput(s, jsii.String("DashboardUrl"), &awscdk.CfnOutputProps{
		Value: awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("https://console.aws.amazon.com/cloudwatch/home?region="), awscdk.Aws_REGION(),
			jsii.String("#dashboards:name="), m.Dashboard.DashboardName()}),
		Description: jsii.String("The pipeline's CloudWatch dashboard"),
	})
	awscdk.NewCfnOutput(s, jsii.String("AlarmTopicArn"), &awscdk.CfnOutputProps{
		Value: m.Topic.TopicArn(), Description: jsii.String("SNS topic the alarms notify; subscribe to it, or set alarmEmail"),
	})
	return &Stack{Stack: s, Monitoring: m}
}
