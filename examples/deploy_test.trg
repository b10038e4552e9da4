# Tests of deploy.trg (run them with: triggerc test examples/deploy.trg).
#
# A file named X_test.trg sees the declarations of X.trg: these tests name its rules.

test "a push to main deploys that commit to production":
    given git.push branch="main" sha="3f1d2c4b5a69" author="alice" files=["src/app/login.py"]
    expect deploy_main with sha="3f1d2c4b5a69", stage="prod"
    expect not deploy_release

test "the bots' pushes to main deploy nothing":
    given git.push branch="main" sha="3f1d2c4b5a69" author="dependabot[bot]"
    expect none

test "a release branch deploys to staging, the parameter's default":
    given git.push branch="release/2.1" sha="9c4e1a0b6d2f" author="alice"
    expect only deploy_release
    expect deploy_release with sha="9c4e1a0b6d2f", stage="staging"

test "other branches and tags deploy nothing":
    given git.push branch="feature/login" sha="9c4e1a0b6d2f" author="alice"
    expect none

test "a tag is not a push":
    given git.tag tag="v2.1.0" sha="9c4e1a0b6d2f" author="alice"
    expect none
