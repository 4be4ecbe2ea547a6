package ingestapi

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/eventschema"
)

// jsonTypes are JSON Schema's type names as the CDK spells them.
var jsonTypes = map[string]awsapigateway.JsonSchemaType{
	"string": awsapigateway.JsonSchemaType_STRING, "integer": awsapigateway.JsonSchemaType_INTEGER,
	"number": awsapigateway.JsonSchemaType_NUMBER, "boolean": awsapigateway.JsonSchemaType_BOOLEAN,
	"object": awsapigateway.JsonSchemaType_OBJECT, "array": awsapigateway.JsonSchemaType_ARRAY,
}

// eventModel is the event schema as a request model: every keyword the
// schema has (eventschema supports no others), through the CDK's typed
// JsonSchema so that a changed schema changes the deployment.
func eventModel(n *eventschema.Node) *awsapigateway.JsonSchema {
	s := &awsapigateway.JsonSchema{
		MinLength: n.MinLength, MaxLength: n.MaxLength, MinItems: n.MinItems, MaxItems: n.MaxItems,
		MinProperties: n.MinProperties, MaxProperties: n.MaxProperties, Minimum: n.Minimum, Maximum: n.Maximum,
		MultipleOf: n.MultipleOf, ExclusiveMinimum: n.ExclusiveMinimum, ExclusiveMaximum: n.ExclusiveMaximum,
		UniqueItems: n.UniqueItems, Default: n.Default,
	}
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return jsii.String(v)
	}
	s.Title, s.Description, s.Pattern, s.Format = str(n.Title), str(n.Description), str(n.Pattern), str(n.Format)
	t := jsonTypes[n.Types[0]]
	if n.TypeList || n.Nullable {
		s.Type = &[]awsapigateway.JsonSchemaType{t, awsapigateway.JsonSchemaType_NULL}
		if !n.Nullable {
			s.Type = &[]awsapigateway.JsonSchemaType{t}
		}
	} else {
		s.Type = t
	}
	if len(n.Properties) > 0 {
		props := map[string]*awsapigateway.JsonSchema{}
		for _, p := range n.Properties {
			props[p.Name] = eventModel(p.Schema)
		}
		s.Properties = &props
	}
	if n.Required != nil {
		s.Required = jsii.Strings(n.Required...)
	}
	switch a := n.AdditionalProperties.(type) {
	case bool:
		s.AdditionalProperties = a
	case *eventschema.Node:
		s.AdditionalProperties = eventModel(a)
	}
	if n.Items != nil {
		s.Items = eventModel(n.Items)
	}
	if n.Enum != nil {
		s.Enum = &n.Enum
	}
	return s
}
