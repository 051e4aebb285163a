// Package cfn reads a CloudFormation / SAM template as plain Go values and
// turns a function's IAM statements into the policy an S3-compatible server
// enforces, so tests can run each Lambda function with exactly the storage
// rights its role grants (MinIO accepts AWS IAM policy JSON).
package cfn

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a template, expanding CloudFormation's short-form tags into
// their long form.
func Parse(b []byte) (map[string]any, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	v, err := cfn(&root)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cfn: top level is not a mapping")
	}
	return m, nil
}

// cfn converts a YAML node to plain Go values, expanding CloudFormation's
// short-form tags (!Ref X, !GetAtt A.B, !Sub s, !If [...], ...) into their
// long form ({"Ref": X}, {"Fn::GetAtt": [A, B]}, ...), so the checks below
// see one representation whatever the template author chose.
func cfn(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("line %d: want one document", n.Line)
		}
		return cfn(n.Content[0])
	case yaml.AliasNode:
		return cfn(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := cfn(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := cfn(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
			var x any
			if err := n.Decode(&x); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			v = x
		} else {
			v = n.Value
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected node kind %v", n.Line, n.Kind)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	fn := n.Tag[1:]
	switch fn {
	case "Ref", "Condition":
		return map[string]any{fn: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	case "Sub", "If", "Equals", "Not", "And", "Or", "Join", "Select", "Split",
		"FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "Length", "ToJsonString":
		return map[string]any{"Fn::" + fn: v}, nil
	}
	return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
}

// Template is a parsed template.
type Template struct {
	Raw        map[string]any
	Resources  map[string]map[string]any // logical id -> resource
	Parameters map[string]map[string]any
	Globals    map[string]any // Globals.Function
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tp := &Template{Raw: raw, Resources: map[string]map[string]any{}, Parameters: map[string]map[string]any{}}
	for id, r := range MapOf(raw["Resources"]) {
		tp.Resources[id] = MapOf(r)
	}
	for id, p := range MapOf(raw["Parameters"]) {
		tp.Parameters[id] = MapOf(p)
	}
	tp.Globals = MapOf(MapOf(raw["Globals"])["Function"])
	return tp, nil
}

// Prop returns a function property, falling back to Globals.Function.
func (tp *Template) Prop(id, name string) any {
	if v, ok := MapOf(tp.Resources[id]["Properties"])[name]; ok {
		return v
	}
	return tp.Globals[name]
}

// Statements returns the IAM statements a function's role has: its inline
// SAM policies, and AWS::IAM::Policy resources on its generated role
// (<id>Role). A policy that is not inline (a managed policy or a SAM policy
// template) is an error: its statements cannot be read here.
func (tp *Template) Statements(id string) ([]map[string]any, error) {
	var out []map[string]any
	for i, p := range ListOf(tp.Prop(id, "Policies")) {
		pm := MapOf(p)
		if pm == nil {
			return nil, fmt.Errorf("%s: policy %d is a managed policy or template (%v); only inline statements can be read", id, i, p)
		}
		for _, s := range ListOf(pm["Statement"]) {
			out = append(out, MapOf(s))
		}
	}
	for _, r := range tp.Resources {
		if r["Type"] != "AWS::IAM::Policy" {
			continue
		}
		props := MapOf(r["Properties"])
		for _, role := range ListOf(props["Roles"]) {
			if fmt.Sprint(Get(role, "Ref")) == id+"Role" {
				for _, s := range ListOf(MapOf(props["PolicyDocument"])["Statement"]) {
					out = append(out, MapOf(s))
				}
			}
		}
	}
	return out, nil
}

// S3Policy is the IAM policy document of a function's S3 rights with the
// bucket resource resolved to bucket: its statements' s3: actions, on
// resources written as ${<bucketID>.Arn}… (Fn::Sub) or GetAtt <bucketID>.Arn.
// Other services' actions (kms:, lambda:) are left out; a statement that
// names another resource is an error, so nothing is silently widened.
func (tp *Template) S3Policy(id, bucketID, bucket string) ([]byte, error) {
	stmts, err := tp.Statements(id)
	if err != nil {
		return nil, err
	}
	arn := "arn:aws:s3:::" + bucket
	type statement struct {
		Sid      string   `json:"Sid,omitempty"`
		Effect   string   `json:"Effect"`
		Action   []string `json:"Action"`
		Resource []string `json:"Resource"`
	}
	var out []statement
	for _, s := range stmts {
		var acts []string
		for _, a := range ListOf(s["Action"]) {
			if as := fmt.Sprint(a); strings.HasPrefix(as, "s3:") {
				acts = append(acts, as)
			}
		}
		if len(acts) == 0 {
			continue
		}
		var res []string
		for _, r := range ListOf(s["Resource"]) {
			switch {
			case Get(r, "Fn::GetAtt") != nil && fmt.Sprint(Get(r, "Fn::GetAtt")) == fmt.Sprint([]any{bucketID, "Arn"}):
				res = append(res, arn)
			case Get(r, "Fn::Sub") != nil:
				sub, ok := Get(r, "Fn::Sub").(string)
				rest, found := strings.CutPrefix(sub, "${"+bucketID+".Arn}")
				if !ok || !found || strings.Contains(rest, "${") {
					return nil, fmt.Errorf("%s: statement %v: resource %v is not the bucket or under it", id, s["Sid"], r)
				}
				res = append(res, arn+rest)
			default:
				return nil, fmt.Errorf("%s: statement %v: resource %v is not the bucket or under it", id, s["Sid"], r)
			}
		}
		out = append(out, statement{Sid: fmt.Sprint(s["Sid"]), Effect: fmt.Sprint(s["Effect"]), Action: acts, Resource: res})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no S3 statements", id)
	}
	return json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": out}, "", "  ")
}

// MapOf is v as a mapping, or nil.
func MapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// ListOf is v as a list: a single value is a list of one.
func ListOf(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	}
	return []any{v}
}

// Get walks a path of keys.
func Get(v any, path ...string) any {
	for _, k := range path {
		v = MapOf(v)[k]
	}
	return v
}
