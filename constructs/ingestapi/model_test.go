package ingestapi_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/ingestapi"
	"github.com/tributary/tributary/constructs/internal/cdktest"
)

// cfgSchema validates events against the project's example schema.
var cfgSchema = lazy(func() *ingestapi.Props {
	raw, err := os.ReadFile("../eventschema/testdata/game.json")
	if err != nil {
		panic(err)
	}
	s, err := eventschema.Parse(raw)
	if err != nil {
		panic(err)
	}
	return &ingestapi.Props{Schema: s}
}(), nil)

// With an event schema, both models carry it: /v1 the schema itself,
// /v1/batch an array of 1 to 500 of it, every keyword as the file has it,
// plus the producer's event_time (event_id the schema has), so an event that
// does not match answers 400 before anything is stored.
func TestRequestModelsFromTheEventSchema(t *testing.T) {
	s := cfgSchema()
	const event = `"properties":{"device":{"additionalProperties":false,"properties":{"Version":{"type":"integer"},"os":{"type":"string"}},"type":"object"},` +
		`"event_id":{"minLength":1,"type":"string"},"event_time":{"type":"string"},` +
		`"extra":{"additionalProperties":{"type":"string"},"type":"object"},` +
		`"items":{"items":{"properties":{"qty":{"type":"integer"},"sku":{"type":"string"}},"type":"object"},"type":"array"},` +
		`"kind":{"enum":["start","end"],"type":"string"},` +
		`"level":{"exclusiveMaximum":true,"maximum":100,"minimum":1,"type":"integer"},` +
		`"score":{"multipleOf":0.5,"type":["number","null"]},` +
		`"tags":{"items":{"type":"string"},"maxItems":10,"minItems":0,"type":"array","uniqueItems":true},` +
		`"userId":{"pattern":"^u-[0-9]+$","type":"string"},` +
		`"won":{"default":false,"type":"boolean"}},"required":["userId","kind"],`
	for path, want := range map[string]string{
		"/v1": `{"$schema":"http://json-schema.org/draft-04/schema#","additionalProperties":true,"description":"One event, as the event schema describes it",` +
			event + `"title":"Event","type":"object"}`,
		"/v1/batch": `{"$schema":"http://json-schema.org/draft-04/schema#","description":"1 to 500 events, each as the event schema describes it",` +
			`"items":{"additionalProperties":true,` + event + `"title":"GameEvent","type":"object"},"maxItems":500,"minItems":1,"title":"Batch","type":"array"}`,
	} {
		modelID, _ := get(s.methods(t)[path], "RequestModels", "application/json", "Ref").(string)
		if got := jsonOf(get(s.resource(t, modelID), "Properties", "Schema")); got != want {
			t.Errorf("%s: schema\n got %s\nwant %s", path, got, want)
		}
	}
	cdktest.Expect(t, "two models", func() { s.tpl.ResourceCountIs(jsii.String("AWS::ApiGateway::Model"), jsii.Number(2)) })
	// Only the models differ from the API without a schema: same templates.
	for path, m := range s.methods(t) {
		if got, want := jsonOf(get(m, "Integration")), jsonOf(get(cfgIAM().methods(t)[path], "Integration")); got != fmt.Sprint(want) {
			t.Errorf("%s: the integration changed with a schema", path)
		}
	}
}
