# Run the tests when Python sources change (what people use watchexec for).
#
# The file source watches only the folders the globs need (src/ and tests/ here),
# never .git/ or the .triggerlang/ state folder, and ignores editor temp files.

source file root="." ignore=["**/__pycache__/**", "**/*.pyc"]

action pytest(paths) = exec "python3" "-m" "pytest" "-q" paths

# Wait for a quiet half second after the last save, then run once with every path that
# changed; if the previous run is still going, stop it and start over.
tests: on file.changed path ~ ["src/**/*.py", "tests/**/*.py"]
    run pytest with <paths> debounce 500ms busy restart timeout 15m
