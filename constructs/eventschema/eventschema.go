// Package eventschema reads the eventSchema setting: a JSON Schema (draft-04,
// the draft API Gateway models take) of one event. It refuses what neither
// an API Gateway model nor a Glue table can hold the same way, adds the
// producer's event_id and event_time when the schema lacks them, and maps
// each property to a Glue (Hive) column type. Plain Go: the constructs turn
// it into a request model and table columns.
package eventschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Draft04 is the $schema URI of draft-04.
const Draft04 = "http://json-schema.org/draft-04/schema#"

// Envelope are the attributes the producer adds to every event (strings):
// the model and the typed table hold them even when the schema does not.
var Envelope = []string{"event_id", "event_time"}

// Reserved are top-level names the tables use themselves: the partition column.
var Reserved = []string{"dt"}

// Node is one (sub)schema, with the keywords this package supports.
type Node struct {
	// Types are the JSON types, without "null"; Nullable tells whether
	// "null" was listed too. TypeList: "type" was written as an array.
	Types    []string
	Nullable bool
	TypeList bool

	Title, Description, Pattern, Format string
	Properties                          []Property
	Required                            []string
	// AdditionalProperties is false, true or a schema (nil: not given).
	AdditionalProperties any
	Items                *Node
	Enum                 []any
	Default              any
	// Numbers and lengths, nil when not given.
	MinLength, MaxLength, MinItems, MaxItems, MinProperties, MaxProperties *float64
	Minimum, Maximum, MultipleOf                                           *float64
	ExclusiveMinimum, ExclusiveMaximum, UniqueItems                        *bool
}

// Property is a named subschema, in the file's order.
type Property struct {
	Name   string
	Schema *Node
}

// Schema is a parsed, supported event schema.
type Schema struct {
	Root *Node
}

// Supported lists the keywords a schema may use, for messages.
var Supported = []string{"$schema", "title", "description", "type", "properties", "required", "additionalProperties",
	"items", "enum", "default", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
	"exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties"}

var types = map[string]bool{"string": true, "integer": true, "number": true, "boolean": true, "object": true, "array": true}

// namePattern: names Athena, Glue and the JSON SerDe take unquoted and
// unmapped (a struct's field names allow no more).
var namePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)

// Parse reads a schema. Its error is one line saying what is wrong and where.
func Parse(raw []byte) (*Schema, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decode(dec)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("not JSON: more than one value")
	}
	root, ok := v.(*object)
	if !ok {
		return nil, fmt.Errorf("not a JSON object")
	}
	if s, has := root.get("$schema"); has {
		if uri, _ := s.(string); strings.TrimSuffix(uri, "#") != strings.TrimSuffix(Draft04, "#") {
			return nil, fmt.Errorf("$schema %v: only draft-04 (%s), which API Gateway models take", s, Draft04)
		}
	}
	n, err := node(root, "(root)", true)
	if err != nil {
		return nil, err
	}
	if len(n.Types) != 1 || n.Types[0] != "object" || n.Nullable {
		return nil, fmt.Errorf(`(root): type must be "object": an event is a JSON object`)
	}
	for _, name := range Reserved {
		for _, p := range n.Properties {
			if strings.EqualFold(p.Name, name) {
				return nil, fmt.Errorf("properties.%s: %q is the tables' partition column", p.Name, name)
			}
		}
	}
	for _, name := range Envelope {
		if p := n.property(name); p == nil {
			n.Properties = append(n.Properties, Property{Name: name, Schema: &Node{Types: []string{"string"}}})
		} else if len(p.Types) != 1 || p.Types[0] != "string" {
			return nil, fmt.Errorf("properties.%s: must be of type string: the producer writes it as a string", name)
		}
	}
	return &Schema{Root: n}, nil
}

func (n *Node) property(name string) *Node {
	for _, p := range n.Properties {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// node checks one subschema at path and converts it.
func node(o *object, path string, root bool) (*Node, error) {
	n := &Node{}
	for _, k := range o.keys {
		v := o.values[k]
		bad := func(want string) error { return fmt.Errorf("%s: %s must be %s", path, k, want) }
		var err error
		switch k {
		case "$schema":
			if !root {
				return nil, fmt.Errorf("%s: $schema only at the root", path)
			}
		case "title":
			n.Title, err = str(v, bad)
		case "description":
			n.Description, err = str(v, bad)
		case "pattern":
			n.Pattern, err = str(v, bad)
		case "format":
			n.Format, err = str(v, bad)
		case "type":
			err = n.setType(v, bad)
		case "properties":
			props, ok := v.(*object)
			if !ok {
				return nil, bad("an object of schemas")
			}
			seen := map[string]string{}
			for _, name := range props.keys {
				if !namePattern.MatchString(name) {
					return nil, fmt.Errorf("%s.properties: %q is not a valid column name: letters, digits and _, starting with a letter or _, at most 255", path, name)
				}
				if other, dup := seen[strings.ToLower(name)]; dup {
					return nil, fmt.Errorf("%s.properties: %q and %q are one column: Athena ignores case", path, other, name)
				}
				seen[strings.ToLower(name)] = name
				sub, ok := props.values[name].(*object)
				if !ok {
					return nil, fmt.Errorf("%s.properties.%s: not a schema (a JSON object)", path, name)
				}
				s, err := node(sub, path+".properties."+name, false)
				if err != nil {
					return nil, err
				}
				n.Properties = append(n.Properties, Property{Name: name, Schema: s})
			}
		case "required":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, bad("a non-empty array of names")
			}
			for _, x := range list {
				s, ok := x.(string)
				if !ok {
					return nil, bad("a non-empty array of names")
				}
				n.Required = append(n.Required, s)
			}
		case "additionalProperties":
			switch x := v.(type) {
			case bool:
				n.AdditionalProperties = x
			case *object:
				s, err := node(x, path+".additionalProperties", false)
				if err != nil {
					return nil, err
				}
				n.AdditionalProperties = s
			default:
				return nil, bad("true, false or a schema")
			}
		case "items":
			sub, ok := v.(*object)
			if !ok {
				return nil, bad("one schema for every item (tuples are not supported)")
			}
			if n.Items, err = node(sub, path+".items", false); err != nil {
				return nil, err
			}
		case "enum":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, bad("a non-empty array")
			}
			n.Enum = plainList(list)
		case "default":
			n.Default = plain(v)
		case "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minimum", "maximum", "multipleOf":
			num, ok := v.(json.Number)
			if !ok {
				return nil, bad("a number")
			}
			f, _ := num.Float64()
			*map[string]**float64{"minLength": &n.MinLength, "maxLength": &n.MaxLength, "minItems": &n.MinItems, "maxItems": &n.MaxItems,
				"minProperties": &n.MinProperties, "maxProperties": &n.MaxProperties, "minimum": &n.Minimum, "maximum": &n.Maximum,
				"multipleOf": &n.MultipleOf}[k] = &f
		case "exclusiveMinimum", "exclusiveMaximum", "uniqueItems":
			b, ok := v.(bool)
			if !ok {
				return nil, bad("true or false (draft-04)")
			}
			*map[string]**bool{"exclusiveMinimum": &n.ExclusiveMinimum, "exclusiveMaximum": &n.ExclusiveMaximum, "uniqueItems": &n.UniqueItems}[k] = &b
		default:
			return nil, fmt.Errorf("%s: unsupported keyword %q (supported: %s)", path, k, strings.Join(Supported, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	if len(n.Types) == 0 {
		return nil, fmt.Errorf(`%s: no type: every property needs one ("string", "integer", "number", "boolean", "object", "array", or one of them with "null")`, path)
	}
	if n.Types[0] == "array" && n.Items == nil {
		return nil, fmt.Errorf("%s: an array needs items: the schema of every item", path)
	}
	return n, nil
}

func (n *Node) setType(v any, bad func(string) error) error {
	const want = `a type or an array of one type and "null"`
	var list []string
	switch x := v.(type) {
	case string:
		list = []string{x}
	case []any:
		n.TypeList = true
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return bad(want)
			}
			list = append(list, s)
		}
	default:
		return bad(want)
	}
	for _, t := range list {
		switch {
		case t == "null":
			n.Nullable = true
		case types[t]:
			n.Types = append(n.Types, t)
		default:
			return bad(want + fmt.Sprintf(" (%q is not a JSON Schema type)", t))
		}
	}
	if len(n.Types) != 1 {
		return bad(want + ": a column has one type")
	}
	return nil
}

func str(v any, bad func(string) error) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", bad("a string")
	}
	return s, nil
}

// Column is one column of the typed table.
type Column struct {
	Name, Type string
}

// Columns are the typed table's columns: one per top-level property, in the
// schema's order (event_id and event_time last if the schema lacks them),
// named in lower case as Athena names them.
func (s *Schema) Columns() []Column {
	out := make([]Column, len(s.Root.Properties))
	for i, p := range s.Root.Properties {
		out[i] = Column{Name: strings.ToLower(p.Name), Type: HiveType(p.Schema)}
	}
	return out
}

// HiveType is the Glue (Hive) type of a schema: string, bigint, double,
// boolean, struct<...> for an object with properties, string (the JSON
// text) for one without, array<...>. "null" changes nothing: every column
// may be null.
func HiveType(n *Node) string {
	switch n.Types[0] {
	case "integer":
		return "bigint"
	case "number":
		return "double"
	case "boolean":
		return "boolean"
	case "array":
		return "array<" + HiveType(n.Items) + ">"
	case "object":
		if len(n.Properties) == 0 {
			return "string"
		}
		fields := make([]string, len(n.Properties))
		for i, p := range n.Properties {
			fields[i] = strings.ToLower(p.Name) + ":" + HiveType(p.Schema)
		}
		return "struct<" + strings.Join(fields, ",") + ">"
	}
	return "string"
}

// object is a JSON object that keeps its keys' order.
type object struct {
	keys   []string
	values map[string]any
}

func (o *object) get(k string) (any, bool) {
	v, ok := o.values[k]
	return v, ok
}

// decode reads one JSON value, objects as *object.
func decode(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{values: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				v, err := decode(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := o.values[k]; dup {
					return nil, fmt.Errorf("key %q twice in one object", k)
				}
				o.keys = append(o.keys, k)
				o.values[k] = v
			}
			_, err := dec.Token()
			return o, err
		case '[':
			var list []any
			for dec.More() {
				v, err := decode(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
	}
	return tok, nil
}

// plain turns decoded values back into encoding/json's kinds (objects as
// maps with sorted keys when marshalled), for enum and default.
func plain(v any) any {
	switch x := v.(type) {
	case *object:
		m := map[string]any{}
		for _, k := range x.keys {
			m[k] = plain(x.values[k])
		}
		return m
	case []any:
		return plainList(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return v
}

func plainList(list []any) []any {
	out := make([]any, len(list))
	for i, x := range list {
		out[i] = plain(x)
	}
	return out
}
