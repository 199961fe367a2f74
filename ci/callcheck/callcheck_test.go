package callcheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"WaitReady":             "wait-ready",
		"deployRepo":            "deploy-repo",
		"fulcioURL":             "fulcio-url",
		"fulcioUrl":             "fulcio-url",
		"certificateOidcIssuer": "certificate-oidc-issuer",
		"SBOMFile":              "sbom-file",
		"Ci":                    "ci",
		"mr":                    "mr",
		"asTarball":             "as-tarball",
		"platform2Name":         "platform2-name",
	} {
		assert.Equal(t, want, Kebab(in), "Kebab(%q)", in)
	}
}

func TestCalls(t *testing.T) {
	script := `set -eu
dagger version
IMAGE_REF=$(dagger call build --version "$CI_COMMIT_SHORT_SHA" \
  publish --address "$CI_REGISTRY_IMAGE:mr-$CI_MERGE_REQUEST_IID")
echo "IMAGE_REF=$IMAGE_REF" >> build.env
dagger --progress=plain call test report export --path=junit.xml || true
`
	calls, err := Calls(script)
	require.NoError(t, err)
	require.Len(t, calls, 2)
	assert.Equal(t, []string{"dagger", "call", "build", "--version", `"$CI_COMMIT_SHORT_SHA"`, "publish", "--address", `"$CI_REGISTRY_IMAGE:mr-$CI_MERGE_REQUEST_IID"`}, calls[0].Words)
	assert.Equal(t, 3, calls[0].Line)
	assert.Equal(t, "dagger --progress=plain call test report export --path=junit.xml", calls[1].String())

	_, err = Calls("echo $(")
	assert.ErrorContains(t, err, "parse shell")
}

func fixture(t *testing.T) *Schema {
	t.Helper()
	s, err := Load(context.Background(), filepath.Join("testdata", "fixture"), "Shop")
	require.NoError(t, err)
	s.Self = []string{"example.com/shop"}
	return s
}

func TestCheckFixture(t *testing.T) {
	s := fixture(t)
	tests := []struct {
		line    string
		wantErr string
	}{
		{"dagger call buy --item-name=tea", ""},
		{"dagger call buy --item-name tea --gift-wrap price", ""},
		{"dagger call buy --item-name tea --gift-wrap true name", ""},
		{"dagger call --city=Oslo buy --item-name tea", ""},
		{"dagger -m github.com/other/mod call anything --goes", ""},
		{"dagger -m example.com/shop@v1.2.0 call buy --item-name tea", ""},
		{"dagger -m example.com/shop@v1.2.0 call sell", `object Shop has no function "sell"`},
		{"dagger --mod=example.com/shop call buy", `function "buy" needs --item-name`},
		{"dagger call -o out.txt wait-ready --deploy-repo x", ""},
		{"dagger call buy", `function "buy" needs --item-name`},
		{"dagger call buy --item-name tea --colour red", `function "buy" has no argument --colour`},
		{"dagger call sell --item-name tea", `object Shop has no function "sell"`},
		{"dagger call buy --item-name tea cost", `object Item has no function "cost"`}, // +private
		{"dagger call buy --item-name tea price cents", `"cents" follows "price", which returns no object`},
		{"dagger call buy --item-name", `argument --item-name of "buy" has no value`},
		{"dagger call --town=Oslo buy --item-name tea", `function "new" has no argument --town`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			err := s.Check(Call{Words: strings.Fields(tt.line), Line: 1})
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestMissingDocsFixture(t *testing.T) {
	missing := fixture(t).MissingDocs()
	joined := strings.Join(missing, "\n")
	assert.Contains(t, joined, "function Shop.Undocumented has no doc comment")
	assert.Contains(t, joined, "argument --deploy-repo of Shop.WaitReady has no doc comment")
	assert.NotContains(t, joined, "Buy", "Buy and its arguments are documented")
	assert.NotContains(t, joined, "--city", "pragmas follow a real doc line")
}

func TestPipelineProblems(t *testing.T) {
	s := fixture(t)
	p, err := ParsePipeline([]byte(`
stages: [test]
.base:
  before_script:
    - dagger version
review:
  script:
    - dagger call buy --item-name "$CI_MERGE_REQUEST_IID" --gift-wrap
  environment:
    name: review/$CI_MERGE_REQUEST_IID
    on_stop: stop-review
stop-revue:
  script: dagger call buy --item-name x --colour red
`))
	require.NoError(t, err)
	problems := p.Problems(s)
	require.Len(t, problems, 2, "%v", problems)
	assert.Contains(t, problems[0], `job review: environment.on_stop names "stop-review", which is not a job`)
	assert.Contains(t, problems[1], "job stop-revue: line 1")
	assert.Contains(t, problems[1], "no argument --colour")
}

func TestMarkdownCalls(t *testing.T) {
	doc := "# T\n\n```sh\ndagger call buy --item-name tea\n```\n\ntext `dagger call sell --now` and `dagger call <function> --help`, `dagger call buy` and `dagger call buy ... price`\n\n```go\ndagger call not-shell\n```\n\n```console\n$ dagger call wait-ready --deploy-repo r\noutput dagger call not-a-command\n```\n"
	calls, err := MarkdownCalls(doc)
	require.NoError(t, err)
	require.Len(t, calls, 3)
	assert.Equal(t, 4, calls[0].Line)
	assert.Equal(t, "dagger call buy --item-name tea", calls[0].String())
	assert.Equal(t, 7, calls[1].Line)
	assert.Equal(t, "dagger call sell --now", calls[1].String(), "inline spans with flags are checked; prose naming functions is not")
	assert.Equal(t, "dagger call wait-ready --deploy-repo r", calls[2].String())
}

// The real module, the real pipeline, the real README: what they say about
// each other must hold.

func loadModule(t *testing.T) *Schema {
	t.Helper()
	s, err := Load(context.Background(), "..", "Voice", "typecheck")
	require.NoError(t, err)
	s.Self = []string{"gitlab.com/acme/voice-agent"}
	return s
}

func TestModuleSchema(t *testing.T) {
	s := loadModule(t)
	root := s.Objects["Voice"]
	require.NotNil(t, root)
	test := root.Functions["test"]
	require.NotNil(t, test, "the module has a test function")
	assert.Equal(t, "TestRun", test.Result)
	assert.False(t, test.Args["source"].Required, "+defaultPath makes source optional")
	run := s.Objects["TestRun"]
	require.NotNil(t, run)
	assert.Equal(t, "File", run.Functions["report"].Result)
	assert.True(t, s.Objects["File"].Core)
	assert.True(t, s.Objects["File"].Functions["export"].Args["path"].Required)
	assert.Contains(t, s.Constructor.Args, "go-image")
	require.NoError(t, s.Check(Call{Words: strings.Fields("dagger call test report export --path=junit.xml")}))
	require.NoError(t, s.Check(Call{Words: strings.Fields("dagger call --go-image=mirror/golang:1 test --race=false check")}))
}

// TestModuleFunctionsAreSmall: no function of the module takes more than
// 12 arguments; what several steps share is set once on an object
// (with-registry-auth, with-signing-key, deploy-repo) instead.
func TestModuleFunctionsAreSmall(t *testing.T) {
	s := loadModule(t)
	for name, o := range s.Objects {
		if o.Core {
			continue
		}
		for fn, f := range o.Functions {
			assert.LessOrEqual(t, len(f.Args), 12, "%s.%s takes %d arguments", name, fn, len(f.Args))
		}
	}
	assert.LessOrEqual(t, len(s.Constructor.Args), 12)
}

func TestModuleIsDocumented(t *testing.T) {
	assert.Empty(t, loadModule(t).MissingDocs(), "every function and argument needs a doc comment: it is the dagger call --help text")
}

func TestPipelineMatchesModule(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".gitlab-ci.yml"))
	require.NoError(t, err)
	p, err := ParsePipeline(data)
	require.NoError(t, err)
	assert.Empty(t, p.Problems(loadModule(t)))
}

// TestPipelineTestJobRunsEveryModule: GitLab's test job calls test-all,
// the function the tests check runs (every Go module, JUnit each), and
// keeps its JUnit reports.
func TestPipelineTestJobRunsEveryModule(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".gitlab-ci.yml"))
	require.NoError(t, err)
	p, err := ParsePipeline(data)
	require.NoError(t, err)
	var functions []string
	for _, j := range p.Jobs {
		if j.Name != "test" {
			continue
		}
		for _, script := range j.Scripts {
			calls, err := Calls(script)
			require.NoError(t, err)
			for _, c := range calls {
				if len(c.Words) > 2 {
					functions = append(functions, c.Words[2])
				}
			}
		}
	}
	assert.Equal(t, []string{"test-all"}, functions)
	assert.Contains(t, string(data), "junit: reports/test/*.xml")
	s := loadModule(t)
	tests := s.Objects["Voice"].Functions["tests"]
	require.NotNil(t, tests, "the +check function")
	assert.Contains(t, s.Objects["Voice"].Functions, "test-all")
}

func TestReadmeMatchesModule(t *testing.T) {
	s := loadModule(t)
	for _, doc := range []string{"README.md", "agent/README.md", "evals/README.md", "deploy/README.md", "ci/BUILD.md"} {
		data, err := os.ReadFile(filepath.Join("..", "..", doc))
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		calls, err := MarkdownCalls(string(data))
		require.NoError(t, err, doc)
		for _, c := range calls {
			assert.NoError(t, s.Check(c), "%s", doc)
		}
	}
}

// TestExampleConsumer checks the example consumer's pipeline, whose calls
// name this module with -m, against the module.
func TestExampleConsumer(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "greeter", ".gitlab-ci.yml"))
	require.NoError(t, err)
	p, err := ParsePipeline(data)
	require.NoError(t, err)
	s := loadModule(t)
	assert.Empty(t, p.Problems(s))
	var calls int
	for _, j := range p.Jobs {
		for _, script := range j.Scripts {
			cs, err := Calls(script)
			require.NoError(t, err)
			calls += len(cs)
		}
	}
	assert.Equal(t, 3, calls, "test, build and deploy each call the module")
}

// The example consumer's own module (ci/examples/greeter/ci), which
// depends on this one: documented, loadable, and what its README says
// about it holds. Its README's calls that name this module with -m are
// checked against this module; the others against the consumer's.
func loadGreeter(t *testing.T) *Schema {
	t.Helper()
	s, err := Load(context.Background(), filepath.Join("..", "examples", "greeter", "ci"), "Greeter", "typecheck")
	require.NoError(t, err)
	s.Self = []string{"ci/examples/greeter", "./ci/examples/greeter"}
	return s
}

func TestExampleConsumerModule(t *testing.T) {
	greeter, voice := loadGreeter(t), loadModule(t)
	assert.Empty(t, greeter.MissingDocs())
	assert.Empty(t, greeter.EngineProblems())
	for _, fn := range []string{"check", "reports", "image", "publish", "deploy"} {
		assert.Contains(t, greeter.Objects["Greeter"].Functions, fn)
	}

	data, err := os.ReadFile(filepath.Join("..", "examples", "greeter", "README.md"))
	require.NoError(t, err)
	calls, err := MarkdownCalls(string(data))
	require.NoError(t, err)
	var own, viaM int
	for _, c := range calls {
		if strings.Contains(c.String(), "-m gitlab.com/acme/voice-agent") {
			viaM++
			assert.NoError(t, voice.Check(c))
			continue
		}
		own++
		assert.NoError(t, greeter.Check(c))
	}
	assert.GreaterOrEqual(t, own, 3, "the README shows the consumer module's own functions")
	assert.GreaterOrEqual(t, viaM, 2, "and the -m route")

	// The repository README runs the consumer module with -m from the root.
	data, err = os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	calls, err = MarkdownCalls(string(data))
	require.NoError(t, err)
	var fromRoot int
	for _, c := range calls {
		if strings.Contains(c.String(), "-m ./ci/examples/greeter") {
			fromRoot++
			assert.NoError(t, greeter.Check(c))
		}
	}
	assert.GreaterOrEqual(t, fromRoot, 1)
}

func TestModuleLoadsOnAnEngine(t *testing.T) {
	assert.Empty(t, loadModule(t).EngineProblems(), "the engine would refuse these")
}

func TestEngineProblemsFixture(t *testing.T) {
	s, err := Load(context.Background(), filepath.Join("testdata", "badmod"), "Bad")
	require.NoError(t, err)
	got := strings.Join(s.EngineProblems(), "\n")
	for _, want := range []string{
		"field Labels has type map[string]string, which Dagger cannot expose",
		`field URL and method Url both become function "url"`,
		`field ID: "id" is reserved`,
		"argument d has type time.Duration, which Dagger cannot expose",
		"argument word: +default=abc: not JSON",
		`argument count: +default="3": want an integer`,
		"argument tags: +default=[1, 2]: want a JSON string",
		"argument path: +defaultPath needs a *dagger.Directory or *dagger.File, not string",
		"context.Context must be the first argument",
		"at most a value and an error can be returned",
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "argument names", "a list default of strings is fine")
	assert.Empty(t, fixture(t).EngineProblems(), "the good fixture has no problems")
}

// TestEngineSmokeScript checks the dagger call lines of .ci/engine-smoke,
// the script that exercises the module on a real engine.
func TestEngineSmokeScript(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".ci", "engine-smoke"))
	require.NoError(t, err)
	calls, err := Calls(string(data))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(calls), 11)
	s, greeter := loadModule(t), loadGreeter(t)
	var consumer int
	for _, c := range calls {
		if strings.Contains(c.String(), "-m ./ci/examples/greeter") {
			consumer++
			assert.NoError(t, greeter.Check(c))
			continue
		}
		assert.NoError(t, s.Check(c))
	}
	assert.Equal(t, 2, consumer, "the smoke test runs the example consumer module")
}

// TestOneNamePerConcept: across every function of the module (dagger call
// --help), a flag name means one thing, and one thing has one flag name.
func TestOneNamePerConcept(t *testing.T) {
	assert.Empty(t, loadModule(t).NamingProblems())
}

// NamingProblems finds two names for one concept (their docs give the same
// CI variable as the example value) and one name with two types; a
// variable used as part of a longer value, and one name used consistently,
// are fine.
func TestNamingProblemsFixture(t *testing.T) {
	s, err := Load(context.Background(), filepath.Join("testdata", "naming"), "Shop")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"$CI_COMMIT_SHA is the example of --commit (Shop.build) and --source-commit (Shop.ship): one concept, give it one name",
		"--mr is string in Shop.note but int in Shop.refund: one name, one meaning",
	}, s.NamingProblems())
	assert.Empty(t, fixture(t).NamingProblems())
}
