package infra_test

// This test reads infra/template.yaml (AWS SAM) and infra/Makefile and checks
// them against the Go functions under functions/: the deployment must not
// drift from the code (a renamed package, a dropped build tag, a write
// permission on the read-only infer role, a route sent to the wrong function).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aiaas/aiaas/infra/cfn"
	"github.com/aiaas/aiaas/platform/quota/dynamo"
)

type template struct {
	*cfn.Template
	raw        map[string]any
	resources  map[string]map[string]any
	parameters map[string]map[string]any
	globals    map[string]any
}

func loadTemplate(t *testing.T) *template {
	t.Helper()
	tp, err := cfn.Load("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &template{Template: tp, raw: tp.Raw, resources: tp.Resources, parameters: tp.Parameters, globals: tp.Globals}
}

var (
	mapOf  = cfn.MapOf
	listOf = cfn.ListOf
	get    = cfn.Get
)

func (tp *template) functions() []string {
	var ids []string
	for id, r := range tp.resources {
		if r["Type"] == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// prop returns a function property, falling back to Globals.Function.
func (tp *template) prop(id, name string) any { return tp.Prop(id, name) }

// statements returns the IAM statements of a function's role.
func (tp *template) statements(t *testing.T, id string) []map[string]any {
	s, err := tp.Statements(id)
	if err != nil {
		t.Error(err)
	}
	return s
}

// a function's execution role, <function id>Role.
func (tp *template) generated(ref string) bool {
	if id, ok := strings.CutSuffix(ref, "Role"); ok {
		return slices.Contains(tp.functions(), id)
	}
	// AutoPublishAlias: live makes <id>Aliaslive (and a version).
	if id, ok := strings.CutSuffix(ref, "Aliaslive"); ok {
		return slices.Contains(tp.functions(), id) && tp.prop(id, "AutoPublishAlias") == "live"
	}
	return false
}

func actions(stmts []map[string]any) []string {
	var out []string
	for _, s := range stmts {
		if s["Effect"] != "Allow" {
			continue
		}
		for _, a := range listOf(s["Action"]) {
			out = append(out, fmt.Sprint(a))
		}
	}
	return out
}

// makeTargets parses infra/Makefile: target -> recipe lines.
func makeTargets(t *testing.T) map[string][]string {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "\t") && cur != "":
			targets[cur] = append(targets[cur], strings.TrimSpace(line))
		case strings.Contains(line, ":") && !strings.HasPrefix(line, "#") && !strings.Contains(line, "="):
			cur = strings.TrimSpace(line[:strings.Index(line, ":")])
		default:
			cur = ""
		}
	}
	return targets
}

var goBuildPkg = regexp.MustCompile(`go build .* (\.\./functions/[a-z0-9_-]+)\s*$`)

func TestFunctionsBuildFromExistingPackages(t *testing.T) {
	tp := loadTemplate(t)
	targets := makeTargets(t)
	ids := tp.functions()
	if len(ids) == 0 {
		t.Fatal("no AWS::Serverless::Function in template")
	}
	built := map[string]bool{}
	for i, id := range ids {
		r := tp.resources[id]
		if get(r, "Metadata", "BuildMethod") != "makefile" {
			t.Errorf("case %d (%s): Metadata.BuildMethod = %v, want makefile (keeps -tags lambda.norpc)", i, id, get(r, "Metadata", "BuildMethod"))
		}
		if cu := tp.prop(id, "CodeUri"); cu != "." {
			t.Errorf("case %d (%s): CodeUri = %v, want . (the folder of infra/Makefile)", i, id, cu)
		}
		if h := tp.prop(id, "Handler"); h != "bootstrap" {
			t.Errorf("case %d (%s): Handler = %v, want bootstrap", i, id, h)
		}
		if rt := tp.prop(id, "Runtime"); rt != "provided.al2023" {
			t.Errorf("case %d (%s): Runtime = %v, want provided.al2023", i, id, rt)
		}
		if a := listOf(tp.prop(id, "Architectures")); len(a) != 1 || a[0] != "arm64" {
			t.Errorf("case %d (%s): Architectures = %v, want [arm64]", i, id, a)
		}
		recipe := targets["build-"+id]
		if len(recipe) != 1 {
			t.Errorf("case %d (%s): infra/Makefile target build-%s has %d recipe lines, want 1", i, id, id, len(recipe))
			continue
		}
		line := recipe[0]
		for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=$(GOARCH)", "go build", "$(GOFLAGS_LAMBDA)", "-o $(ARTIFACTS_DIR)/bootstrap"} {
			if !strings.Contains(line, want) {
				t.Errorf("case %d (%s): build recipe %q lacks %q", i, id, line, want)
			}
		}
		m := goBuildPkg.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("case %d (%s): build recipe %q does not build ../functions/<name>", i, id, line)
			continue
		}
		dir := m[1]
		built[filepath.Base(dir)] = true
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			// The function's main package is written after the template;
			// the report lists which ones are pending.
			t.Logf("case %d (%s): %s does not exist yet (pending)", i, id, dir)
			continue
		}
		if !isMainPackage(t, dir) {
			t.Errorf("case %d (%s): %s has no package main", i, id, dir)
		}
	}
	vars := makeVars(t)
	for _, want := range []string{"-tags lambda.norpc", "-trimpath", "-s -w"} {
		if !strings.Contains(vars["GOFLAGS_LAMBDA"], want) {
			t.Errorf("Makefile GOFLAGS_LAMBDA = %q lacks %q", vars["GOFLAGS_LAMBDA"], want)
		}
	}
	if !strings.Contains(vars["GOARCH"], "arm64") {
		t.Errorf("Makefile GOARCH = %q, want arm64 (the template's architecture)", vars["GOARCH"])
	}
	// The converse: every Lambda main package is deployed.
	entries, _ := os.ReadDir("../functions")
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" && isMainPackage(t, filepath.Join("../functions", e.Name())) && !built[e.Name()] {
			t.Errorf("functions/%s is a main package with no function in template.yaml", e.Name())
		}
	}
}

func makeVars(t *testing.T) map[string]string {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimRight(k, "?:"))
		if ok && k != "" && !strings.ContainsAny(k, " \t:") {
			vars[k] = strings.TrimSpace(v)
		}
	}
	return vars
}

func isMainPackage(t *testing.T, dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^package main\s*$`).Match(b) {
			return true
		}
	}
	return false
}

func TestLeastPrivilege(t *testing.T) {
	tp := loadTemplate(t)
	// The data plane reads, and writes only its tenants' audit records
	// (every request is audited): PutObject on that prefix, nothing else.
	// Infer and admin share the tenants' quotas through the quota table
	// (platform/quota/dynamo: GetItem and UpdateItem, nothing else).
	inferMust := []string{"s3:GetObject", "s3:ListBucket", "kms:Decrypt", "s3:PutObject", "kms:GenerateDataKey", "secretsmanager:GetSecretValue", "dynamodb:GetItem", "dynamodb:UpdateItem"}
	inferMustNot := []string{"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "kms:Encrypt", "lambda:InvokeFunction"}
	cases := []struct {
		id        string
		must      []string
		mustNot   []string
		invokable []string // lambda:InvokeFunction resources allowed
	}{
		{"InferFunction", inferMust, inferMustNot, nil},
		{"InferIsolatedFunction", inferMust, inferMustNot, nil},
		{"AdminFunction", []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction", "secretsmanager:GetSecretValue", "dynamodb:GetItem", "dynamodb:UpdateItem"}, nil, []string{"TrainFunction"}},
		{"TrainFunction", []string{"s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction", "secretsmanager:GetSecretValue"}, []string{"dynamodb:GetItem", "dynamodb:UpdateItem"}, []string{"TrainFunction"}},
	}
	seen := map[string]bool{}
	for i, c := range cases {
		if tp.resources[c.id] == nil {
			t.Errorf("case %d: no resource %s", i, c.id)
			continue
		}
		seen[c.id] = true
		stmts := tp.statements(t, c.id)
		acts := actions(stmts)
		for _, a := range c.must {
			if !slices.Contains(acts, a) {
				t.Errorf("case %d (%s): lacks %s (has %v)", i, c.id, a, acts)
			}
		}
		for _, a := range c.mustNot {
			if slices.Contains(acts, a) {
				t.Errorf("case %d (%s): must not have %s", i, c.id, a)
			}
		}
		for _, s := range stmts {
			for _, a := range listOf(s["Action"]) {
				as := fmt.Sprint(a)
				if strings.Contains(as, "*") {
					t.Errorf("case %d (%s): wildcard action %s", i, c.id, as)
				}
				if strings.HasPrefix(as, "s3:") || strings.HasPrefix(as, "kms:") {
					checkResourceIn(t, i, c.id, s["Resource"], "ModelBucket", "ModelKey")
				}
				if strings.HasPrefix(as, "dynamodb:") {
					checkResourceIn(t, i, c.id, s["Resource"], "QuotaTable")
					if !slices.Contains([]string{"dynamodb:GetItem", "dynamodb:UpdateItem"}, as) {
						t.Errorf("case %d (%s): %s; the quota limiter needs GetItem and UpdateItem only", i, c.id, as)
					}
				}
				if strings.HasPrefix(c.id, "Infer") && as == "s3:PutObject" {
					for _, r := range listOf(s["Resource"]) {
						if sub := fmt.Sprint(get(r, "Fn::Sub")); sub != "${ModelBucket.Arn}/tenants/*/records/audit/*" {
							t.Errorf("case %d (%s): may put %v; want only the audit records", i, c.id, r)
						}
					}
				}
				if as == "secretsmanager:GetSecretValue" {
					for _, r := range listOf(s["Resource"]) {
						sub := fmt.Sprint(get(r, "Fn::Sub"))
						master := sub == "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${MasterKeySecretName}-??????"
						adminKey := sub == "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AdminKeySecretName}-??????"
						if !master && !(adminKey && c.id == "AdminFunction") {
							t.Errorf("case %d (%s): may read secret %v", i, c.id, r)
						}
					}
				}
				if as == "lambda:InvokeFunction" {
					for _, r := range listOf(s["Resource"]) {
						target := fmt.Sprint(listOf(get(r, "Fn::GetAtt"))[0:1])
						if len(c.invokable) == 0 || target != fmt.Sprint([]any{c.invokable[0]}) {
							t.Errorf("case %d (%s): may invoke %v", i, c.id, r)
						}
					}
				}
			}
		}
	}
	for _, id := range tp.functions() {
		if !seen[id] {
			t.Errorf("function %s has no least-privilege expectations in this test", id)
		}
	}
}

// checkResourceIn fails unless every resource of a statement is derived from
// one of the named logical resources (no "*", no other bucket).
func checkResourceIn(t *testing.T, i int, id string, res any, allowed ...string) {
	t.Helper()
	for _, r := range listOf(res) {
		refs := referencedIDs(r)
		if len(refs) == 0 {
			t.Errorf("case %d (%s): resource %v is not derived from %v", i, id, r, allowed)
		}
		for _, ref := range refs {
			if !slices.Contains(allowed, ref) {
				t.Errorf("case %d (%s): resource %v references %s", i, id, r, ref)
			}
		}
	}
}

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}`)

// referencedIDs lists the logical ids or parameters a value refers to.
func referencedIDs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "Ref":
				out = append(out, fmt.Sprint(val))
			case "Fn::GetAtt":
				if l := listOf(val); len(l) > 0 {
					out = append(out, fmt.Sprint(l[0]))
				}
			case "Fn::Sub":
				s := val
				if l, ok := val.([]any); ok && len(l) > 0 {
					s = l[0]
					out = append(out, referencedIDs(l[1:])...)
				}
				if str, ok := s.(string); ok {
					for _, m := range subRef.FindAllStringSubmatch(str, -1) {
						out = append(out, m[1])
					}
				}
			default:
				out = append(out, referencedIDs(val)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, referencedIDs(e)...)
		}
	}
	return out
}

func TestEveryReferenceResolves(t *testing.T) {
	tp := loadTemplate(t)
	refs := referencedIDs(map[string]any{"r": tp.raw["Resources"], "o": tp.raw["Outputs"], "g": tp.raw["Globals"]})
	for _, ref := range refs {
		if strings.HasPrefix(ref, "AWS::") {
			continue
		}
		if tp.resources[ref] == nil && tp.parameters[ref] == nil && !tp.generated(ref) {
			t.Errorf("reference to undefined %q", ref)
		}
	}
	conds := mapOf(tp.raw["Conditions"])
	for id, r := range tp.resources {
		if c, ok := r["Condition"]; ok && conds[fmt.Sprint(c)] == nil {
			t.Errorf("%s: undefined condition %v", id, c)
		}
	}
}

// The quota table is what platform/quota/dynamo expects (its key, its TTL
// attribute), billed on demand, and every function granted it is told its
// name — and only those.
func TestQuotaTable(t *testing.T) {
	tp := loadTemplate(t)
	r := tp.resources["QuotaTable"]
	if r == nil || r["Type"] != "AWS::DynamoDB::Table" {
		t.Fatalf("QuotaTable: %v", r)
	}
	p := mapOf(r["Properties"])
	if p["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode %v, want PAY_PER_REQUEST", p["BillingMode"])
	}
	ks := listOf(p["KeySchema"])
	if len(ks) != 1 || get(ks[0], "AttributeName") != dynamo.HashKey || get(ks[0], "KeyType") != "HASH" {
		t.Errorf("KeySchema %v, want the hash key %q only", ks, dynamo.HashKey)
	}
	ad := listOf(p["AttributeDefinitions"])
	if len(ad) != 1 || get(ad[0], "AttributeName") != dynamo.HashKey || get(ad[0], "AttributeType") != "S" {
		t.Errorf("AttributeDefinitions %v", ad)
	}
	if get(p, "TimeToLiveSpecification", "AttributeName") != dynamo.TTLAttribute || get(p, "TimeToLiveSpecification", "Enabled") != true {
		t.Errorf("TimeToLiveSpecification %v, want enabled on %q", p["TimeToLiveSpecification"], dynamo.TTLAttribute)
	}
	for _, id := range tp.functions() {
		granted := slices.Contains(actions(tp.statements(t, id)), "dynamodb:UpdateItem")
		told := false
		if env := mapOf(get(tp.resources[id], "Properties", "Environment", "Variables")); env != nil {
			if v, ok := env["AIAAS_QUOTA_TABLE"]; ok {
				told = slices.Equal(referencedIDs(v), []string{"QuotaTable"})
				if !told {
					t.Errorf("%s: AIAAS_QUOTA_TABLE is %v, not the QuotaTable", id, v)
				}
			}
		}
		if v := get(tp.globals, "Environment", "Variables", "AIAAS_QUOTA_TABLE"); v != nil {
			t.Errorf("AIAAS_QUOTA_TABLE in Globals would reach functions not granted the table")
		}
		if granted != told {
			t.Errorf("%s: may write the quota table: %v; has AIAAS_QUOTA_TABLE: %v", id, granted, told)
		}
	}
}

func TestBucket(t *testing.T) {
	tp := loadTemplate(t)
	var buckets []string
	for id, r := range tp.resources {
		if r["Type"] == "AWS::S3::Bucket" {
			buckets = append(buckets, id)
		}
	}
	if len(buckets) != 1 || buckets[0] != "ModelBucket" {
		t.Fatalf("buckets = %v, want [ModelBucket]", buckets)
	}
	p := mapOf(tp.resources["ModelBucket"]["Properties"])
	sse := mapOf(listOf(get(p, "BucketEncryption", "ServerSideEncryptionConfiguration"))[0])
	if get(sse, "ServerSideEncryptionByDefault", "SSEAlgorithm") != "aws:kms" ||
		!slices.Contains(referencedIDs(get(sse, "ServerSideEncryptionByDefault", "KMSMasterKeyID")), "ModelKey") {
		t.Errorf("bucket encryption = %v, want aws:kms with ModelKey", sse)
	}
	if tp.resources["ModelKey"]["Type"] != "AWS::KMS::Key" || get(tp.resources["ModelKey"], "Properties", "EnableKeyRotation") != true {
		t.Errorf("ModelKey must be a KMS key with rotation")
	}
	// The bucket outlives the stack, so must the key its objects are
	// encrypted with: a deleted key makes the retained bucket unreadable.
	for _, id := range []string{"ModelBucket", "ModelKey"} {
		for _, policy := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if tp.resources[id][policy] != "Retain" {
				t.Errorf("%s: %s = %v, want Retain", id, policy, tp.resources[id][policy])
			}
		}
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if get(p, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("PublicAccessBlockConfiguration.%s is not true", k)
		}
	}
	if get(p, "VersioningConfiguration", "Status") != "Enabled" {
		t.Errorf("versioning is not enabled")
	}
	abort := false
	for _, r := range listOf(get(p, "LifecycleConfiguration", "Rules")) {
		if get(r, "Status") == "Enabled" && get(r, "AbortIncompleteMultipartUpload", "DaysAfterInitiation") != nil {
			abort = true
		}
	}
	if !abort {
		t.Errorf("no enabled lifecycle rule aborts incomplete multipart uploads")
	}
}

// httpRoutes maps the HTTP API's route keys to the functions they invoke:
// SAM HttpApi events, and AWS::ApiGatewayV2::Route resources through their
// integration to a function's alias.
func (tp *template) httpRoutes(t *testing.T) map[string]string {
	got := map[string]string{}
	add := func(key, fn string) {
		if prev, dup := got[key]; dup {
			t.Errorf("route %s mapped twice (%s, %s)", key, prev, fn)
		}
		got[key] = fn
	}
	for _, id := range tp.functions() {
		for name, ev := range mapOf(tp.prop(id, "Events")) {
			if get(ev, "Type") != "HttpApi" {
				continue
			}
			p := mapOf(get(ev, "Properties"))
			if get(p, "ApiId", "Ref") != "HttpApi" {
				t.Errorf("%s.%s: not attached to HttpApi", id, name)
			}
			add(fmt.Sprint(p["Method"])+" "+fmt.Sprint(p["Path"]), id)
		}
	}
	for id, r := range tp.resources {
		if r["Type"] != "AWS::ApiGatewayV2::Route" {
			continue
		}
		p := mapOf(r["Properties"])
		if get(p, "ApiId", "Ref") != "HttpApi" {
			t.Errorf("%s: not attached to HttpApi", id)
		}
		integ, ok := strings.CutPrefix(fmt.Sprint(get(p, "Target", "Fn::Sub")), "integrations/${")
		integ = strings.TrimSuffix(integ, "}")
		ir := tp.resources[integ]
		if !ok || ir["Type"] != "AWS::ApiGatewayV2::Integration" {
			t.Errorf("%s: target %v is not an integration", id, p["Target"])
			continue
		}
		alias := fmt.Sprint(get(ir, "Properties", "IntegrationUri", "Ref"))
		fn, _ := strings.CutSuffix(alias, "Aliaslive")
		if !tp.generated(alias) {
			t.Errorf("%s: integration %s targets %q, not a function's live alias", id, integ, alias)
		}
		if r["Condition"] != tp.resources[fn]["Condition"] || r["Condition"] != ir["Condition"] {
			t.Errorf("%s: condition %v differs from its integration's (%v) or function's (%v)", id, r["Condition"], ir["Condition"], tp.resources[fn]["Condition"])
		}
		add(fmt.Sprint(p["RouteKey"]), fn)
	}
	return got
}

func TestRoutes(t *testing.T) {
	tp := loadTemplate(t)
	want := map[string]string{
		"GET /v2/{proxy+}":                 "InferFunction",
		"POST /v2/{proxy+}":                "InferFunction",
		"GET /v2":                          "InferFunction",
		"POST /openai/v1/{proxy+}":         "InferFunction",
		"POST /v1/endpoints/{name}/invoke": "InferFunction",
		"POST /v1/models/{model}/explain":  "InferFunction",
		"ANY /v1/{proxy+}":                 "AdminFunction",
	}
	got := tp.httpRoutes(t)
	for route, fn := range want {
		if got[route] != fn {
			t.Errorf("route %s -> %q, want %s", route, got[route], fn)
		}
	}
	for route, fn := range got {
		if _, ok := want[route]; !ok {
			t.Errorf("unexpected route %s -> %s", route, fn)
		}
	}
	if tp.prop("TrainFunction", "Events") != nil {
		t.Errorf("TrainFunction must not be reachable over HTTP")
	}
	// Every permission lets API Gateway invoke a live alias, under its
	// function's condition.
	for id, r := range tp.resources {
		if r["Type"] != "AWS::Lambda::Permission" {
			continue
		}
		alias := fmt.Sprint(get(r, "Properties", "FunctionName", "Ref"))
		fn, _ := strings.CutSuffix(alias, "Aliaslive")
		if !tp.generated(alias) || r["Condition"] != tp.resources[fn]["Condition"] {
			t.Errorf("%s: permission on %q under condition %v", id, alias, r["Condition"])
		}
	}
}

// TestTenancyModes: a stack has exactly one infer function — the shared one
// (with provisioned concurrency, HTTP API routes) or the tenant-isolated one
// (no provisioned concurrency, which Lambda refuses; a REST API that maps
// X-Aiaas-Tenant to X-Amz-Tenant-Id, which an HTTP API cannot).
func TestTenancyModes(t *testing.T) {
	tp := loadTemplate(t)
	conds := mapOf(tp.raw["Conditions"])
	if fmt.Sprint(conds["Shared"]) != fmt.Sprint(map[string]any{"Fn::Not": []any{map[string]any{"Condition": "PerTenant"}}}) {
		t.Errorf("Shared = %v, want the complement of PerTenant", conds["Shared"])
	}
	if tp.resources["InferFunction"]["Condition"] != "Shared" || tp.resources["InferIsolatedFunction"]["Condition"] != "PerTenant" {
		t.Errorf("infer functions' conditions: %v, %v", tp.resources["InferFunction"]["Condition"], tp.resources["InferIsolatedFunction"]["Condition"])
	}
	if tp.prop("InferFunction", "TenancyConfig") != nil {
		t.Errorf("the shared infer function must not have TenancyConfig")
	}
	if tp.prop("InferIsolatedFunction", "ProvisionedConcurrencyConfig") != nil || get(tp.prop("InferIsolatedFunction", "TenancyConfig"), "TenantIsolationMode") != "PER_TENANT" {
		t.Errorf("the isolated infer function: TenancyConfig %v, ProvisionedConcurrencyConfig %v",
			tp.prop("InferIsolatedFunction", "TenancyConfig"), tp.prop("InferIsolatedFunction", "ProvisionedConcurrencyConfig"))
	}
	if get(tp.prop("InferIsolatedFunction", "Environment"), "Variables", "AIAAS_TENANT_ISOLATION") != "PER_TENANT" {
		t.Errorf("the isolated function must know it is isolated (AIAAS_TENANT_ISOLATION)")
	}
	api := tp.resources["TenantApi"]
	if api["Type"] != "AWS::Serverless::Api" || api["Condition"] != "PerTenant" {
		t.Fatalf("TenantApi: %v under %v", api["Type"], api["Condition"])
	}
	m := mapOf(get(api, "Properties", "DefinitionBody", "paths", "/{proxy+}", "x-amazon-apigateway-any-method"))
	integ := mapOf(m["x-amazon-apigateway-integration"])
	if integ["type"] != "aws_proxy" || !strings.Contains(fmt.Sprint(get(integ, "uri", "Fn::Sub")), "${InferIsolatedFunctionAliaslive}") {
		t.Errorf("TenantApi integration = %v", integ)
	}
	if get(integ, "requestParameters", "integration.request.header.X-Amz-Tenant-Id") != "method.request.header.X-Aiaas-Tenant" {
		t.Errorf("TenantApi does not map X-Aiaas-Tenant to X-Amz-Tenant-Id: %v", integ["requestParameters"])
	}
	required := false
	for _, p := range listOf(m["parameters"]) {
		if get(p, "name") == "X-Aiaas-Tenant" && get(p, "in") == "header" && get(p, "required") == true {
			required = true
		}
	}
	if !required || m["x-amazon-apigateway-request-validator"] == nil {
		t.Errorf("X-Aiaas-Tenant must be a required, validated header")
	}
}

// TestRoutesMatchThePlatform reads the platform's routes and checks that API
// Gateway sends each to the function of its plane: a data-plane route
// (any tenant key) to infer, a control-plane route to admin. This is how a
// new data-plane route cannot silently land on the admin function.
func TestRoutesMatchThePlatform(t *testing.T) {
	tp := loadTemplate(t)
	routes := tp.httpRoutes(t)
	b, err := os.ReadFile("../platform/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`s\.route\("([A-Z]+) ([^"]+)", (public|invoke|manage|admin),`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		method, path, acc := m[1], m[2], m[3]
		if acc == "public" || strings.HasSuffix(path, "metrics") {
			continue // health (every plane) and per-process metrics (not on Lambda)
		}
		n++
		want := "AdminFunction"
		if acc == "invoke" {
			want = "InferFunction"
		}
		if got := routeFor(routes, method, path); got != want {
			t.Errorf("%s %s (%s) reaches %q, want %s", method, path, acc, got, want)
		}
	}
	if n < 20 {
		t.Fatalf("found %d platform routes; the pattern no longer matches routes.go", n)
	}
}

func TestLoggingConfigAndEnvironment(t *testing.T) {
	tp := loadTemplate(t)
	for i, id := range tp.functions() {
		lc := mapOf(tp.prop(id, "LoggingConfig"))
		if lc["LogFormat"] != "JSON" {
			t.Errorf("case %d (%s): LogFormat = %v, want JSON", i, id, lc["LogFormat"])
		}
		lg := fmt.Sprint(get(lc, "LogGroup", "Ref"))
		if tp.resources[lg]["Type"] != "AWS::Logs::LogGroup" || get(tp.resources[lg], "Properties", "RetentionInDays") == nil {
			t.Errorf("case %d (%s): log group %q missing or without retention", i, id, lg)
		}
	}
	env := mapOf(get(tp.globals, "Environment", "Variables"))
	for _, k := range []string{"AIAAS_STORE", "AIAAS_S3_SSE", "AIAAS_PLUGIN_CACHE_DIR", "AIAAS_BATCH_WINDOW", "AIAAS_MASTER_KEY_FROM",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "AIAAS_TRACE_FLUSH_TIMEOUT"} {
		if env[k] == nil {
			t.Errorf("Globals environment lacks %s", k)
		}
	}
	if !strings.HasPrefix(fmt.Sprint(get(env, "AIAAS_STORE", "Fn::Sub")), "s3://${ModelBucket}") {
		t.Errorf("AIAAS_STORE = %v", env["AIAAS_STORE"])
	}
	admin := mapOf(get(tp.resources["AdminFunction"], "Properties", "Environment", "Variables"))
	if get(admin, "AIAAS_TRAIN_FUNCTION", "Ref") != "TrainFunction" || get(admin, "AIAAS_ADMIN_KEY_FROM", "Fn::Sub") != "secretsmanager:${AdminKeySecretName}" {
		t.Errorf("AdminFunction environment = %v", admin)
	}
	for _, id := range []string{"InferFunction", "InferIsolatedFunction"} {
		if v := get(tp.resources[id], "Properties", "Environment", "Variables", "AIAAS_PREWARM_ENDPOINTS", "Ref"); v != "PrewarmEndpoints" {
			t.Errorf("%s: AIAAS_PREWARM_ENDPOINTS = %v, want the PrewarmEndpoints parameter", id, v)
		}
	}
	if get(env, "OTEL_EXPORTER_OTLP_ENDPOINT", "Ref") != "OtlpEndpoint" || get(tp.globals, "Tracing", "Ref") != "TracingMode" {
		t.Errorf("tracing is not wired to its parameters: %v, Tracing %v", env["OTEL_EXPORTER_OTLP_ENDPOINT"], tp.globals["Tracing"])
	}
	for _, p := range []string{"MemorySize", "EphemeralStorage", "ProvisionedConcurrency", "TenancyMode", "MasterKeySecretName", "AdminKeySecretName",
		"SecretsExtensionLayerArn", "OtlpEndpoint", "TracingMode", "PrewarmEndpoints", "StageRateLimit", "StageBurstLimit", "TrainReservedConcurrency"} {
		if tp.parameters[p] == nil {
			t.Errorf("missing parameter %s", p)
		}
	}
	// Secrets are read at init through the extension, never put in an
	// environment (a dynamic reference would resolve into one).
	if get(env, "AIAAS_MASTER_KEY_FROM", "Fn::Sub") != "secretsmanager:${MasterKeySecretName}" {
		t.Errorf("AIAAS_MASTER_KEY_FROM = %v", env["AIAAS_MASTER_KEY_FROM"])
	}
	if l := listOf(tp.globals["Layers"]); len(l) != 1 || get(l[0], "Ref") != "SecretsExtensionLayerArn" {
		t.Errorf("Globals.Layers = %v, want the Parameters and Secrets extension", tp.globals["Layers"])
	}
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "{{resolve:") {
		t.Errorf("the template resolves a dynamic reference: its value would be plaintext in a function's configuration")
	}
	for _, id := range append(tp.functions(), "") {
		vars := mapOf(get(tp.resources[id], "Properties", "Environment", "Variables"))
		if id == "" {
			vars = env
		}
		for _, k := range []string{"AIAAS_MASTER_KEY", "AIAAS_ADMIN_KEY"} {
			if vars[k] != nil {
				t.Errorf("%s: %s is in the environment; use %s_FROM", id, k, k)
			}
		}
	}
}

// routeFor picks the function API Gateway (HTTP API) invokes for a request:
// among matching routes, one without a greedy variable beats one with, then
// more literal segments win, then an exact method beats ANY.
func routeFor(routes map[string]string, method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestScore := "", -1
	for key, fn := range routes {
		m, p, _ := strings.Cut(key, " ")
		if m != "ANY" && m != method {
			continue
		}
		score, ok := matchPath(strings.Split(strings.Trim(p, "/"), "/"), segs)
		if !ok {
			continue
		}
		if m == method {
			score++
		}
		if score > bestScore {
			best, bestScore = fn, score
		}
	}
	return best
}

// matchPath matches a route's segments against a request's: a literal must
// be equal (and scores 10), {x} takes one segment, a trailing {x+} one or
// more and makes the route less specific than any without.
func matchPath(route, segs []string) (score int, ok bool) {
	score = 1000
	for i, r := range route {
		if strings.HasSuffix(r, "+}") {
			return score - 1000, i < len(segs)
		}
		if i >= len(segs) {
			return 0, false
		}
		switch {
		case strings.HasPrefix(r, "{"):
		case r == segs[i]:
			score += 10
		default:
			return 0, false
		}
	}
	return score, len(route) == len(segs)
}

// TestTrainFailureDestination: a train invocation that dies (crash, out of
// memory, timeout) is not retried (that would train twice) and is reported
// to train itself, which marks the job failed; the queue age matches the
// platform's bound for a queued job.
func TestTrainFailureDestination(t *testing.T) {
	tp := loadTemplate(t)
	if tp.prop("TrainFunction", "EventInvokeConfig") != nil {
		t.Errorf("TrainFunction.EventInvokeConfig: SAM would grant the destination in the function's own role (a cycle); use TrainInvokeConfig")
	}
	c := tp.resources["TrainInvokeConfig"]
	p := mapOf(c["Properties"])
	if c["Type"] != "AWS::Lambda::EventInvokeConfig" || get(p, "FunctionName", "Ref") != "TrainFunction" || p["Qualifier"] != "$LATEST" {
		t.Fatalf("TrainInvokeConfig = %v", c)
	}
	if fmt.Sprint(p["MaximumRetryAttempts"]) != "0" || fmt.Sprint(p["MaximumEventAgeInSeconds"]) != "3600" {
		t.Errorf("retries %v, event age %v; want 0 and 3600 (platform.QueuedStale)", p["MaximumRetryAttempts"], p["MaximumEventAgeInSeconds"])
	}
	if fmt.Sprint(get(p, "DestinationConfig", "OnFailure", "Destination", "Fn::GetAtt")) != fmt.Sprint([]any{"TrainFunction", "Arn"}) {
		t.Errorf("OnFailure destination = %v, want TrainFunction itself", get(p, "DestinationConfig", "OnFailure"))
	}
}
