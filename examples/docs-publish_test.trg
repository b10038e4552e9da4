# Tests of docs-publish.trg.

test "an edit then a push publishes":
    given file.modified path="docs/guide/intro.md"
    wait 2m
    given git.push branch="main" sha="d0c5" files=["docs/guide/intro.md"]
    expect only docs_publish
    expect docs_publish with sha="d0c5"

test "a push before any edit is out of order":
    given git.push branch="main" sha="d0c5" files=["docs/guide/intro.md"]
    expect none
    given file.modified path="docs/guide/intro.md"
    expect open docs_publish missing push

test "edit, edit, commit: the window runs from the last edit":
    given file.modified path="docs/a.md"
    wait 4m
    given file.modified path="docs/b.md"
    wait 4m
    given git.push branch="main" sha="d0c5" files=["docs/b.md"]
    expect docs_publish with sha="d0c5"

test "a push after the window has closed publishes nothing":
    given file.modified path="docs/a.md"
    wait 5m
    expect expired docs_publish missing push
    given git.push branch="main" sha="d0c5" files=["docs/a.md"]
    expect none
