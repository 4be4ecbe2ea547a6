// Package localsql runs Athena's side of Tributary offline: DuckDB (the
// pinned @duckdb/node-api in .tools) reads the landed objects through views
// that stand in for the synthesized Glue tables, and the few Athena functions
// the saved queries use that DuckDB spells differently are macros. The app's
// SQL tests and the local pipeline's query command share it, so what the
// tests prove is what a user runs.
package localsql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/tributary/tributary/internal/cfn"
)

// Macros stand in for the Athena (Trino) functions the named queries use
// that DuckDB spells differently. Everything else in them is SQL both
// engines run alike. docs/local.md lists them.
var Macros = []string{
	// Athena's json_extract_scalar returns a scalar as varchar, and NULL for
	// an object, an array, JSON null or a line that is not JSON, where
	// DuckDB's json_extract_string would fail the query or return the text.
	`CREATE MACRO json_extract_scalar(j, p) AS CASE WHEN json_valid(j) THEN CASE WHEN json_type(json_extract(j, p)) NOT IN ('OBJECT', 'ARRAY', 'NULL') THEN json_extract_string(j, p) END END`,
	// Athena's from_iso8601_timestamp takes ISO 8601 with a T, any offset;
	// DuckDB's cast also takes a space, which Athena refuses (NULL under try).
	`CREATE MACRO from_iso8601_timestamp(s) AS CASE WHEN strpos(s, ' ') = 0 THEN TRY_CAST(s AS TIMESTAMPTZ) END`,
	// Athena's from_utf8 turns varbinary into varchar (from_base64 is alike).
	`CREATE MACRO from_utf8(b) AS decode(b)`,
	// Athena's date_format takes MySQL-style specifiers; %Y %m %d %H are strftime's too.
	`CREATE MACRO date_format(ts, f) AS strftime(ts, f)`,
}

// duckType maps the Glue (Hive) types the synthesized tables use.
var duckType = map[string]string{"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}

// TableViews are DuckDB views standing in for the Glue tables of the
// templates: the same columns, reading the files under the table's location
// (relative to the folder DuckDB runs in, which holds the bucket's objects),
// with dt taken from each file's folder as the projection's location
// template and format say.
func TableViews(templates ...cfn.Template) ([]string, error) {
	var views []string
	for _, tpl := range templates {
		tables := cfn.Resources(tpl, "AWS::Glue::Table")
		for _, id := range sortedKeys(tables) {
			v, err := tableView(tables[id])
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", id, err)
			}
			views = append(views, v)
		}
	}
	return views, nil
}

func tableView(table map[string]any) (string, error) {
	in := cfn.Get(table, "Properties", "TableInput")
	params := cfn.Get(in, "Parameters")
	// s3://${Bucket}/raw-data/${dt}/ -> raw-data/(\d{4}/\d{2}/\d{2}/\d{2})/, and
	// each other projected column (enum: errors/${error_type}/...) one folder.
	location := regexp.MustCompile(`^s3://\$\{\w+\}/`).ReplaceAllString(cfn.Joined(cfn.Get(params, "storage.location.template")), "")
	pattern, files := regexp.QuoteMeta(location), location
	var keys []string
	partitions, _ := cfn.Get(in, "PartitionKeys").([]any)
	for _, k := range partitions {
		key := fmt.Sprint(cfn.Get(k, "Name"))
		placeholder := "${" + key + "}"
		at := strings.Index(location, placeholder)
		if at < 0 {
			return "", fmt.Errorf("partition column %s is not in the location template %s", key, location)
		}
		folder, glob := `[^/]+`, "*"
		switch typ, _ := cfn.Get(params, "projection."+key+".type").(string); typ {
		case "date":
			format, _ := cfn.Get(params, "projection."+key+".format").(string)
			folder = strings.NewReplacer("yyyy", `\d{4}`, "MM", `\d{2}`, "dd", `\d{2}`, "HH", `\d{2}`).Replace(format)
			glob = strings.NewReplacer("yyyy", "*", "MM", "*", "dd", "*", "HH", "*").Replace(format)
		case "enum":
			values, _ := cfn.Get(params, "projection."+key+".values").(string)
			folder = "(?:" + strings.ReplaceAll(regexp.QuoteMeta(values), ",", "|") + ")"
		default:
			return "", fmt.Errorf("no stand-in for projection type %q of %s", typ, key)
		}
		keys = append(keys, key)
		pattern = strings.Replace(pattern, regexp.QuoteMeta(placeholder), "("+folder+")", 1)
		files = strings.Replace(files, placeholder, glob, 1)
	}
	// Groups in the location's order, which may differ from the keys'.
	order := append([]string{}, keys...)
	sort.Slice(order, func(i, j int) bool {
		return strings.Index(location, "${"+order[i]+"}") < strings.Index(location, "${"+order[j]+"}")
	})
	var extracted []string
	for _, key := range keys {
		group := 1 + indexOf(order, key)
		extracted = append(extracted, fmt.Sprintf(`regexp_extract(filename, '%s', %d) AS %s`, pattern, group, key))
	}
	dt := strings.Join(extracted, ", ")
	// Only the projected folders: a folder not in an enum is not read, as in Athena.
	filter := fmt.Sprintf(`regexp_matches(filename, '%s')`, pattern)
	files += "*"
	var columns []string
	cols, _ := cfn.Get(in, "StorageDescriptor", "Columns").([]any)
	for _, c := range cols {
		typ, ok := duckType[fmt.Sprint(cfn.Get(c, "Type"))]
		if !ok {
			return "", fmt.Errorf("no DuckDB type for column %v", c)
		}
		columns = append(columns, fmt.Sprintf("'%s': '%s'", cfn.Get(c, "Name"), typ))
	}
	name := fmt.Sprint(cfn.Get(in, "Name"))
	switch cfn.Get(in, "StorageDescriptor", "SerdeInfo", "SerializationLibrary") {
	case "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe": // one column, split on field.delim, which no line holds
		delim, _ := cfn.Get(in, "StorageDescriptor", "SerdeInfo", "Parameters", "field.delim").(string)
		if len(delim) != 1 {
			return "", fmt.Errorf("field.delim %q is not one character", delim)
		}
		return fmt.Sprintf(`CREATE VIEW %s AS SELECT * EXCLUDE (filename), %s FROM read_csv('%s', columns = {%s}, delim = chr(%d), quote = '', escape = '', header = false, auto_detect = false, filename = true) WHERE %s`,
			name, dt, files, strings.Join(columns, ", "), delim[0], filter), nil
	case "org.openx.data.jsonserde.JsonSerDe":
		return jsonView(name, dt, files, filter, cols, cfn.Get(in, "StorageDescriptor", "SerdeInfo", "Parameters"))
	case "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe":
		// Athena reads Parquet columns by name; a file's column of another
		// type reads as the table's type, or NULL.
		var selected []string
		for _, c := range cols {
			col := fmt.Sprint(cfn.Get(c, "Name"))
			selected = append(selected, fmt.Sprintf(`TRY_CAST("%s" AS %s) AS "%s"`, col, duckType[fmt.Sprint(cfn.Get(c, "Type"))], col))
		}
		return fmt.Sprintf(`CREATE VIEW %s AS SELECT %s, %s FROM read_parquet('%s', filename = true, union_by_name = true) WHERE %s`,
			name, strings.Join(selected, ", "), dt, files, filter), nil
	}
	return "", fmt.Errorf("no DuckDB stand-in for %v", cfn.Get(in, "StorageDescriptor", "SerdeInfo"))
}

// jsonView reads each line as text and parses it as the OpenX JSON SerDe
// does with the synthesized parameters (it refuses others): a line that is
// not a JSON object or repeats a key (ignoring case) is a row of NULLs with
// its dt; a key matches its column ignoring case; a value that does not fit
// the column's type is NULL. DuckDB's read_ndjson would fail the query on
// the first bad line, or skip it, where Athena returns a row.
func jsonView(name, dt, files, filter string, cols []any, params any) (string, error) {
	for k, want := range map[string]string{"ignore.malformed.json": "true", "use.null.for.invalid.data": "true", "case.insensitive": "true"} {
		if got, _ := cfn.Get(params, k).(string); !strings.EqualFold(got, want) {
			return "", fmt.Errorf("OpenX SerDe parameter %s is %q: the stand-in reads only %s=%s", k, got, k, want)
		}
	}
	var columns []string
	for _, c := range cols {
		col := fmt.Sprint(cfn.Get(c, "Name"))
		columns = append(columns, fmt.Sprintf(`TRY_CAST(json_extract_string(o, list_filter(json_keys(o), k -> lower(k) = '%s')[1]) AS %s) AS "%s"`,
			col, duckType[fmt.Sprint(cfn.Get(c, "Type"))], col))
	}
	return fmt.Sprintf(`CREATE VIEW %s AS WITH lines AS (SELECT line, filename FROM read_csv('%s', columns = {'line': 'VARCHAR'}, delim = chr(1), quote = '', escape = '', header = false, auto_detect = false, filename = true)), `+
		`objects AS (SELECT *, CASE WHEN json_valid(line) THEN CASE WHEN json_type(line) = 'OBJECT' THEN line END END AS j FROM lines), `+
		`parsed AS (SELECT *, CASE WHEN len(json_keys(j)) = len(list_distinct(list_transform(json_keys(j), k -> lower(k)))) THEN j END AS o FROM objects) `+
		`SELECT %s, %s FROM parsed WHERE %s`, name, files, strings.Join(columns, ", "), dt, filter), nil
}

// NamedQueries are the templates' saved (Athena named) queries by name.
func NamedQueries(templates ...cfn.Template) map[string]string {
	out := map[string]string{}
	for _, tpl := range templates {
		for _, q := range cfn.Resources(tpl, "AWS::Athena::NamedQuery") {
			out[fmt.Sprint(cfn.Get(q, "Properties", "Name"))] = fmt.Sprint(cfn.Get(q, "Properties", "QueryString"))
		}
	}
	return out
}

// Run runs statements with DuckDB in dir (where the tables' locations are
// relative to) and returns each statement's rows. tools is the .tools folder
// holding the pinned DuckDB.
func Run(tools, dir string, statements []string) ([][]map[string]any, error) {
	in, _ := json.Marshal(map[string]any{"dir": dir, "statements": statements})
	cmd := exec.Command("node", filepath.Join(tools, "duckdb.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("duckdb: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var results [][]map[string]any
	if err := json.Unmarshal(out, &results); err != nil {
		return nil, fmt.Errorf("duckdb output: %v", err)
	}
	return results, nil
}

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
