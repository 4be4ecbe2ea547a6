// Package providerlogs confines the Lambda functions CDK adds for its own
// custom resources (emptying buckets, restricting a VPC's default security
// group): their logs go to a log group with a retention (Lambda's own group
// would keep them forever), and their role may write there only, instead of
// AWSLambdaBasicExecutionRole, which allows logs on every group.
package providerlogs

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Confine applies to the provider with construct id providerID (such as
// "Custom::S3AutoDeleteObjectsCustomResourceProvider") in c's stack, once. It
// panics if the provider is missing: its logs would have no retention.
func Confine(c constructs.IConstruct, providerID string, retention awslogs.RetentionDays) {
	stack := awscdk.Stack_Of(c)
	provider := stack.Node().TryFindChild(jsii.String(providerID))
	if provider == nil {
		panic("providerlogs: CDK's " + providerID + " was not found; its logs would have no retention")
	}
	id := providerID + "Logs"
	if stack.Node().TryFindChild(jsii.String(id)) != nil {
		return
	}
	group := awslogs.NewLogGroup(stack, jsii.String(id), &awslogs.LogGroupProps{
		Retention: retention, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	handler := provider.Node().FindChild(jsii.String("Handler")).(awscdk.CfnResource)
	handler.AddPropertyOverride(jsii.String("LoggingConfig.LogGroup"), group.LogGroupName())
	role := provider.Node().FindChild(jsii.String("Role")).(awscdk.CfnResource)
	role.AddPropertyDeletionOverride(jsii.String("ManagedPolicyArns"))
	role.AddPropertyOverride(jsii.String("Policies"), []any{map[string]any{
		"PolicyName": "WriteOwnLogs",
		"PolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect": "Allow",
				"Action": []string{"logs:CreateLogStream", "logs:PutLogEvents"},
				// The group's ARN ends in :*, which covers its log streams: this one group only.
				"Resource": group.LogGroupArn(),
			}},
		},
	}})
}
