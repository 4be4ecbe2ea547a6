// Package stack creates the app's stacks the same way: the construct id is
// the stack name (so `cdk deploy <name>` selects it), every resource is
// tagged with it, and a development stage's log groups go with the stack.
package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// New creates the stack. props may be nil; its StackName is replaced.
// Unless retain, log groups are deleted with the stack; call Finish after
// the stack's resources exist.
func New(scope constructs.Construct, name, description string, props *awscdk.StackProps) awscdk.Stack {
	var sp awscdk.StackProps
	if props != nil {
		sp = *props
	}
	sp.StackName = jsii.String(name)
	if sp.Description == nil {
		sp.Description = jsii.String(description)
	}
	s := awscdk.NewStack(scope, jsii.String(name), &sp)
	awscdk.Tags_Of(s).Add(jsii.String("tributary:stack"), jsii.String(name), nil)
	return s
}

// Finish deletes the stack's log groups with it when the data is not
// retained: a development stage leaves nothing behind.
func Finish(s awscdk.Stack, retain bool) {
	if !retain {
		awscdk.RemovalPolicies_Of(s).Destroy(&awscdk.RemovalPolicyProps{ApplyToResourceTypes: jsii.Strings("AWS::Logs::LogGroup")})
	}
}
