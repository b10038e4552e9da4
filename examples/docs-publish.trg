# A docs file edited here, then pushed to main within five minutes: publish the docs
# (SPEC §11: seq, unkeyed, so one group at a time).

action publish_docs(sha) = exec "./scripts/publish-docs.sh" sha

docs_publish: on seq(
        file.modified path ~ "docs/**/*.md" as edit,
        git.push branch="main" files ~ "docs/**" as push,
    ) within 5m
    run publish_docs with <push.sha>
