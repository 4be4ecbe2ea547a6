package eventschema_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tributary/tributary/constructs/eventschema"
)

func parseFile(t *testing.T, path string) *eventschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventschema.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// The typed columns follow the schema: one per top-level property, in the
// file's order, in lower case, with docs/querying.md's type mapping (integer
// bigint, number double, nullable as its type, objects as structs or JSON
// text, arrays of their items' type); the producer's event_time is added
// because the schema lacks it, its event_id kept where the schema has it.
func TestColumnsFollowTheSchema(t *testing.T) {
	got := fmt.Sprint(parseFile(t, "testdata/game.json").Columns())
	want := fmt.Sprint([]eventschema.Column{
		{Name: "event_id", Type: "string"},
		{Name: "userid", Type: "string"},
		{Name: "level", Type: "bigint"},
		{Name: "score", Type: "double"},
		{Name: "won", Type: "boolean"},
		{Name: "kind", Type: "string"},
		{Name: "device", Type: "struct<os:string,version:bigint>"},
		{Name: "tags", Type: "array<string>"},
		{Name: "items", Type: "array<struct<sku:string,qty:bigint>>"},
		{Name: "extra", Type: "string"},
		{Name: "event_time", Type: "string"},
	})
	if got != want {
		t.Errorf("columns\n got %s\nwant %s", got, want)
	}
	example := fmt.Sprint(parseFile(t, "../../test/testdata/event-schema.json").Columns())
	if want := "[{value string} {type string} {event_id string} {event_time string}]"; example != want {
		t.Errorf("the example schema's columns %s, want %s", example, want)
	}
}

// Every keyword the schema uses is kept for the request model.
func TestKeywordsAreKept(t *testing.T) {
	r := parseFile(t, "testdata/game.json").Root
	prop := func(name string) *eventschema.Node {
		for _, p := range r.Properties {
			if p.Name == name {
				return p.Schema
			}
		}
		t.Fatalf("no property %s", name)
		return nil
	}
	level, score, device, tags := prop("level"), prop("score"), prop("device"), prop("tags")
	for what, ok := range map[string]bool{
		"title":                  r.Title == "GameEvent",
		"required":               fmt.Sprint(r.Required) == "[userId kind]",
		"additionalProperties":   r.AdditionalProperties == true,
		"pattern":                prop("userId").Pattern == "^u-[0-9]+$",
		"minimum, maximum":       *level.Minimum == 1 && *level.Maximum == 100 && *level.ExclusiveMaximum && level.ExclusiveMinimum == nil,
		"nullable number":        score.Nullable && score.TypeList && fmt.Sprint(score.Types) == "[number]" && *score.MultipleOf == 0.5,
		"default":                prop("won").Default == false,
		"enum":                   fmt.Sprint(prop("kind").Enum) == "[start end]",
		"nested false":           device.AdditionalProperties == false,
		"array limits":           *tags.MinItems == 0 && *tags.MaxItems == 10 && *tags.UniqueItems,
		"additional as a schema": fmt.Sprint(prop("extra").AdditionalProperties.(*eventschema.Node).Types) == "[string]",
		"event_time added":       prop("event_time").Types[0] == "string" && !prop("event_time").TypeList,
		"event_id kept":          *prop("event_id").MinLength == 1,
	} {
		if !ok {
			t.Errorf("%s not kept", what)
		}
	}
}

// An unsupported or invalid schema fails with one line naming the problem
// and where it is.
func TestRefusals(t *testing.T) {
	for schema, want := range map[string]string{
		`[]`:                  "not a JSON object",
		`{"type":"object"`:    "not JSON: EOF",
		`{"type":"object"}{}`: "not JSON: more than one value",
		`{"type":"array","items":{"type":"object"}}`:                                                                        `(root): type must be "object": an event is a JSON object`,
		`{"type":["object","null"]}`:                                                                                        `(root): type must be "object": an event is a JSON object`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`:                                             "$schema http://json-schema.org/draft-07/schema#: only draft-04 (http://json-schema.org/draft-04/schema#), which API Gateway models take",
		`{"type":"object","properties":{"a":{"$ref":"#/definitions/x"}}}`:                                                   `(root).properties.a: unsupported keyword "$ref" (supported: $schema, title,`,
		`{"type":"object","definitions":{}}`:                                                                                `(root): unsupported keyword "definitions"`,
		`{"type":"object","properties":{"a":{"oneOf":[{"type":"string"}]}}}`:                                                `(root).properties.a: unsupported keyword "oneOf"`,
		`{"type":"object","properties":{"a":{"anyOf":[{"type":"string"}]}}}`:                                                `(root).properties.a: unsupported keyword "anyOf"`,
		`{"type":"object","allOf":[{"type":"object"}]}`:                                                                     `(root): unsupported keyword "allOf"`,
		`{"type":"object","properties":{"a":{"type":"string","$schema":"x"}}}`:                                              `(root).properties.a: $schema only at the root`,
		`{"type":"object","properties":{"a-b":{"type":"string"}}}`:                                                          `(root).properties: "a-b" is not a valid column name`,
		`{"type":"object","properties":{"1a":{"type":"string"}}}`:                                                           `(root).properties: "1a" is not a valid column name`,
		`{"type":"object","properties":{"userId":{"type":"string"},"userid":{"type":"string"}}}`:                            `(root).properties: "userId" and "userid" are one column: Athena ignores case`,
		`{"type":"object","properties":{"d":{"type":"object","properties":{"A":{"type":"string"},"a":{"type":"string"}}}}}`: `(root).properties.d.properties: "A" and "a" are one column`,
		`{"type":"object","properties":{"DT":{"type":"string"}}}`:                                                           `properties.DT: "dt" is the tables' partition column`,
		`{"type":"object","properties":{"a":{}}}`:                                                                           `(root).properties.a: no type: every property needs one`,
		`{"type":"object","properties":{"a":{"type":"date"}}}`:                                                              `(root).properties.a: type must be a type or an array of one type and "null" ("date" is not a JSON Schema type)`,
		`{"type":"object","properties":{"a":{"type":["string","integer"]}}}`:                                                `(root).properties.a: type must be a type or an array of one type and "null": a column has one type`,
		`{"type":"object","properties":{"a":{"type":"array"}}}`:                                                             `(root).properties.a: an array needs items`,
		`{"type":"object","properties":{"a":{"type":"array","items":[{"type":"string"}]}}}`:                                 `(root).properties.a: items must be one schema for every item (tuples are not supported)`,
		`{"type":"object","properties":{"event_time":{"type":"integer"}}}`:                                                  `properties.event_time: must be of type string: the producer writes it as a string`,
		`{"type":"object","properties":{"event_id":{"type":["string","null"]}}}`:                                            ``,
		`{"type":"object","required":[]}`:                                                                                   `(root): required must be a non-empty array of names`,
		`{"type":"object","properties":{"a":{"type":"string","minLength":"1"}}}`:                                            `(root).properties.a: minLength must be a number`,
		`{"type":"object","properties":{"a":{"type":"integer","exclusiveMinimum":3}}}`:                                      `(root).properties.a: exclusiveMinimum must be true or false (draft-04)`,
		`{"type":"object","properties":{"a":{"type":"string","a":1,"a":2}}}`:                                                `key "a" twice in one object`,
	} {
		_, err := eventschema.Parse([]byte(schema))
		if want == "" { // a nullable string is a string column
			if err != nil {
				t.Errorf("%s: %v, want accepted", schema, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s:\n got %v\nwant one line containing %s", schema, err, want)
		}
	}
}
