# Tests of tests-on-change.trg. A given file event has the change's path; its `paths`
# (what a debounced rule runs with) is [path].

test "saving a source file runs the tests with that path":
    given file.modified path="src/app/models.py"
    expect tests with paths=["src/app/models.py"]

test "a new test file runs the tests":
    given file.created path="tests/test_login.py"
    expect only tests

test "a deleted module runs the tests too (file.changed is any change)":
    given file.deleted path="src/app/old.py"
    expect tests

test "the docs do not run the tests":
    given file.modified path="docs/index.md"
    expect none

test "only Python files count":
    given file.modified path="src/app/settings.toml"
    expect not tests
