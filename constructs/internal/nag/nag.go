// Package nag records cdk-nag suppressions, each on one resource and, where the
// rule reports several findings, one finding.
package nag

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Suppress suppresses rule on the CloudFormation resource of c (c itself when
// it is one, else its default child), only for the findings in appliesTo when
// given.
func Suppress(c constructs.IConstruct, rule, reason string, appliesTo ...string) {
	target := c
	if _, ok := c.(awscdk.CfnResource); !ok {
		if child := c.Node().DefaultChild(); child != nil {
			target = child
		}
	}
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		a := make([]any, len(appliesTo))
		for i, f := range appliesTo {
			a[i] = f
		}
		s.AppliesTo = &a
	}
	cdknag.NagSuppressions_AddResourceSuppressions(target, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(false))
}

// LogicalID is the logical id CloudFormation will know c's resource by, as
// cdk-nag writes it in findings such as Resource::<LogicalId.Arn>/*.
func LogicalID(c constructs.IConstruct) string {
	cfn := c.Node().DefaultChild().(awscdk.CfnElement)
	stack := awscdk.Stack_Of(c)
	switch id := stack.Resolve(stack.GetLogicalId(cfn)).(type) {
	case string:
		return id
	case *string:
		return *id
	}
	panic("nag: no logical id for " + *c.Node().Path())
}
