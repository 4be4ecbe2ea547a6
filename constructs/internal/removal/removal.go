// Package removal says what happens to a resource when its stack is deleted.
package removal

import "github.com/aws/aws-cdk-go/awscdk/v2"

// Policy is DESTROY when destroyWithStack (a development stage leaves nothing
// behind), else RETAIN (the data outlives the stack).
func Policy(destroyWithStack bool) awscdk.RemovalPolicy {
	if destroyWithStack {
		return awscdk.RemovalPolicy_DESTROY
	}
	return awscdk.RemovalPolicy_RETAIN
}
