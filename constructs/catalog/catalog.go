// Package catalog is the Glue Data Catalog over the landed events: a
// database, a schema-free table that reads any event as one line of JSON,
// and, with an event schema, a typed table. Both tables project their
// partitions (the UTC hour folders) from the layout, so Athena needs no
// crawler and no MSCK REPAIR.
package catalog

import (
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsglue"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/tributary/tributary/constructs/eventschema"
	"github.com/tributary/tributary/constructs/internal/check"
	"github.com/tributary/tributary/internal/layout"
)

// Table names.
const (
	RawTable   = "events_raw" // one string column, line: the event's JSON
	ErrorTable = "errors"     // line: Firehose's JSON document of a failed record
	TypedTable = "events"     // a column per property of the event schema
	LineColumn = "line"
)

// Output formats: what Firehose writes, so what the tables read.
const (
	JSON    = "JSON"
	Parquet = "PARQUET"
)

// Formats lists them, the default first.
var Formats = []string{JSON, Parquet}

// lineDelimiter splits nothing: a JSON text never holds a raw U+0001 (JSON
// escapes control characters inside strings and allows none outside), so
// the schema-free table's one column is the whole line.
const lineDelimiter = "\u0001"

// JSONSerdeParameters make one bad line cost that line only (OpenX JSON
// SerDe, Athena's "OpenX JSON SerDe" page): a line that is not a JSON
// object, or repeats a key, reads as a row of NULLs (with its dt) instead
// of failing the query; a value that does not fit its column's type reads
// as NULL. Keys match columns ignoring case, as by default, so that
// nested fields spelled with capitals (struct fields are lower case in
// Glue) are read; the schema refuses two properties that differ only by case.
var JSONSerdeParameters = map[string]string{
	"ignore.malformed.json":     "true",
	"use.null.for.invalid.data": "true",
	"case.insensitive":          "true",
}

var databaseNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,255}$`)

// Props configures the catalog.
type Props struct {
	// Bucket holds the events (required).
	Bucket awss3.IBucket
	// Layout is where they land (required: DataPrefix).
	Layout layout.Layout
	// DatabaseName: lower-case letters, digits and _, as Athena requires.
	// Default: DatabaseNameFor(the stack's name).
	DatabaseName string
	// Schema, when set, adds the typed table.
	Schema *eventschema.Schema
	// Format is JSON (default) or PARQUET (needs Schema; then only the
	// typed table can read the objects).
	Format string
	// ErrorPrefix, when set, adds the errors table over Firehose's error
	// output there (by error type and UTC arrival hour).
	ErrorPrefix string
}

// DatabaseNameFor turns a name such as Tributary-PROD into one Athena can
// use unquoted: tributary_prod.
func DatabaseNameFor(name string) string {
	return strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(name, "_"))
}

func (p Props) resolve(stackName string) (Props, error) {
	if p.DatabaseName == "" {
		p.DatabaseName = DatabaseNameFor(stackName)
	}
	if p.Format == "" {
		p.Format = JSON
	}
	if p.Layout.By == "" {
		p.Layout.By = layout.ArrivalTime
	}
	if !databaseNamePattern.MatchString(p.DatabaseName) {
		return p, check.Invalid("databaseName", p.DatabaseName, "1 to 255 lower-case letters, digits and _")
	}
	if err := check.OneOf("outputFormat", p.Format, Formats...); err != nil {
		return p, err
	}
	if err := check.OneOf("partitioning", string(p.Layout.By), string(layout.ArrivalTime), string(layout.EventTime)); err != nil {
		return p, err
	}
	if p.Format == Parquet && p.Schema == nil {
		return p, check.Invalid("outputFormat", p.Format, "PARQUET only with eventSchema: Firehose converts to Parquet with the typed table's columns")
	}
	return p, nil
}

// Validate reports the first setting that is not allowed.
func (p Props) Validate() error {
	_, err := p.resolve("stack")
	return err
}

// Catalog wraps the database and its tables.
type Catalog struct {
	constructs.Construct
	Database awsglue.Database
	// Raw is the schema-free table (nil with PARQUET: it reads text).
	Raw awsglue.S3Table
	// Events is the typed table (nil without a schema).
	Events awsglue.S3Table
	// Errors reads the error output (nil without ErrorPrefix).
	Errors       awsglue.S3Table
	DatabaseName string
}

// New creates the catalog. It panics with a one-line message if props are invalid.
func New(scope constructs.Construct, id string, props *Props) *Catalog {
	if props == nil || props.Bucket == nil || props.Layout.DataPrefix == "" {
		panic("catalog: Bucket and Layout are required")
	}
	p, err := props.resolve(*awscdk.Stack_Of(scope).StackName())
	if err != nil {
		panic(err.Error())
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	cat := &Catalog{Construct: c, DatabaseName: p.DatabaseName}
	cat.Database = awsglue.NewDatabase(c, jsii.String("Database"), &awsglue.DatabaseProps{
		DatabaseName: jsii.String(p.DatabaseName),
		Description:  jsii.String("Tributary: the events landed by " + *awscdk.Stack_Of(c).StackName()),
		// Metadata only, recreated by the stack; a retained database would keep
		// its fixed name and block the next deployment.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	if p.Format == JSON {
		cat.Raw = table(c, p, cat.Database, "RawTable", RawTable, "Every event as its JSON line: query with json_extract_scalar(line, '$.field')",
			lines("the event, one line of JSON"), textFormat(), false)
		textSerde(cat.Raw)
	}
	if p.ErrorPrefix != "" {
		// Error documents are JSON, but their field names differ by error
		// type (errorCode, ErrorCode, lastErrorCode in Firehose's guide): one
		// text column read with json_extract_scalar takes them all. Text
		// reads them in either output format.
		cat.Errors = table(c, p, cat.Database, "ErrorsTable", ErrorTable, "Records Firehose could not deliver, one JSON document each (rawData: the record, base64)",
			lines("Firehose's JSON document of one failed record"), textFormat(), true)
		textSerde(cat.Errors)
	}
	if p.Schema != nil {
		var cols []*awsglue.Column
		for _, col := range p.Schema.Columns() {
			cols = append(cols, &awsglue.Column{Name: jsii.String(col.Name),
				Type: awsglue.Schema_Custom(jsii.String(col.Type), jsii.Bool(!strings.ContainsRune(col.Type, '<')))})
		}
		format := awsglue.DataFormat_JSON()
		if p.Format == Parquet {
			format = awsglue.DataFormat_PARQUET()
		}
		cat.Events = table(c, p, cat.Database, "EventsTable", TypedTable, "The events, a column per property of the event schema", cols, format, false)
		if p.Format == JSON {
			cat.Events.TableResource().AddPropertyOverride(jsii.String("TableInput.StorageDescriptor.SerdeInfo.Parameters"), JSONSerdeParameters)
		}
	}
	return cat
}

func lines(comment string) []*awsglue.Column {
	return []*awsglue.Column{{Name: jsii.String(LineColumn), Type: awsglue.Schema_STRING(), Comment: jsii.String(comment)}}
}

func textFormat() awsglue.DataFormat {
	return awsglue.NewDataFormat(&awsglue.DataFormatProps{
		InputFormat:          awsglue.InputFormat_TEXT(),
		OutputFormat:         awsglue.OutputFormat_HIVE_IGNORE_KEY_TEXT(),
		SerializationLibrary: awsglue.SerializationLibrary_LAZY_SIMPLE(),
	})
}

// textSerde splits lines on a character no JSON line holds (the L2 does
// not model SerDe parameters).
func textSerde(t awsglue.S3Table) {
	t.TableResource().AddPropertyOverride(jsii.String("TableInput.StorageDescriptor.SerdeInfo.Parameters"), map[string]string{
		"field.delim": lineDelimiter, "serialization.format": lineDelimiter,
	})
}

// table creates a table over the layout's folders with partition
// projection; errors: over the error prefix, by error type and arrival hour.
func table(c constructs.Construct, p Props, db awsglue.IDatabase, id, name, description string, columns []*awsglue.Column, format awsglue.DataFormat, errors bool) awsglue.S3Table {
	min, max := p.Layout.ProjectionRange()
	prefix, template := p.Layout.DataPrefix, p.Layout.LocationTemplate()
	keys := []*awsglue.Column{{Name: jsii.String(layout.Column), Type: awsglue.Schema_STRING(),
		Comment: jsii.String("the UTC hour folder, " + layout.HourFormat + "; filter on it to read only those hours")}}
	dt := awsglue.PartitionProjectionConfiguration_Date(&awsglue.DatePartitionProjectionConfigurationProps{
		Min: jsii.String(min), Max: jsii.String(max), Format: jsii.String(layout.HourFormat),
		Step: &awsglue.DateProjectionStep{Interval: jsii.Number(1), IntervalUnit: awsglue.DateIntervalUnit_HOURS},
	})
	projection := map[string]awsglue.PartitionProjectionConfiguration{layout.Column: dt}
	if errors {
		// Error folders are arrival hours in either layout (Firehose allows no
		// partition keys in the error prefix): never ahead of Athena's clock.
		min, max = layout.Layout{By: layout.ArrivalTime}.ProjectionRange()
		prefix, template = p.ErrorPrefix, layout.ErrorLocationTemplate(p.ErrorPrefix)
		keys = append([]*awsglue.Column{{Name: jsii.String(layout.ErrorTypeColumn), Type: awsglue.Schema_STRING(),
			Comment: jsii.String("Firehose's error-output-type folder")}}, keys...)
		projection = map[string]awsglue.PartitionProjectionConfiguration{
			layout.ErrorTypeColumn: awsglue.PartitionProjectionConfiguration_Enum(&awsglue.EnumPartitionProjectionConfigurationProps{Values: jsii.Strings(layout.ErrorTypes...)}),
			layout.Column: awsglue.PartitionProjectionConfiguration_Date(&awsglue.DatePartitionProjectionConfigurationProps{
				Min: jsii.String(min), Max: jsii.String(max), Format: jsii.String(layout.HourFormat),
				Step: &awsglue.DateProjectionStep{Interval: jsii.Number(1), IntervalUnit: awsglue.DateIntervalUnit_HOURS},
			}),
		}
	}
	t := awsglue.NewS3Table(c, jsii.String(id), &awsglue.S3TableProps{
		Database:      db,
		TableName:     jsii.String(name),
		Description:   jsii.String(description),
		Columns:       &columns,
		PartitionKeys: &keys,
		DataFormat:    format,
		Storage:       awsglue.S3TableStorage_FromBucket(p.Bucket),
		S3Prefix:      jsii.String(prefix),
		// The bucket encrypts with SSE-S3, which readers need not know about.
		HasEncryptedData:    jsii.Bool(false),
		PartitionProjection: &projection,
		Parameters: &map[string]*string{
			"storage.location.template": awscdk.Fn_Join(jsii.String(""), &[]*string{
				jsii.String("s3://"), p.Bucket.BucketName(), jsii.String("/" + template),
			}),
		},
	})
	t.ApplyRemovalPolicy(awscdk.RemovalPolicy_DESTROY)
	return t
}
