# Tests of gitlab-pipeline.trg, with real GitLab deliveries from payloads/ (see its README).
# The fixtures are from a project whose default branch is master: fields written before
# `from` move them to main.

test "a successful pipeline on main deploys its commit to production":
    given gitlab.pipeline branch="main" from "payloads/gitlab-pipeline.json"
    expect only deploy_main
    expect deploy_main with sha="bcbb5ec396a2c0f828686f14fac9b80b780504f2", env="prod"

test "the real pipeline ran on master: no deploy":
    given gitlab.pipeline from "payloads/gitlab-pipeline.json"
    expect none

test "scheduled pipelines do not deploy":
    given gitlab.pipeline status="success" branch="main" source="schedule" sha="bcbb5ec3"
    expect not deploy_main

test "failed pipelines do not deploy":
    given gitlab.pipeline status="failed" branch="main" source="push" sha="bcbb5ec3"
    expect none

test "a version tag push tags the image":
    given gitlab.tag_push from "payloads/gitlab-tag_push.json"
    expect only tag_image
    expect tag_image with tag="v1.0.0", sha="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"

test "deleting a tag tags nothing":
    given gitlab.tag_push tag="v1.0.0" sha="0000000000000000000000000000000000000000"
    expect none

test "a merge request into main runs the contract tests":
    given gitlab.merge_request base="main" from "payloads/gitlab-merge_request.json"
    expect only contracts
    expect contracts with sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7", env="contract-tests"

test "the real merge request targets master: no contract tests":
    given gitlab.merge_request from "payloads/gitlab-merge_request.json"
    expect none
