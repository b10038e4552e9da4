# TRG005: an include must name rules files; each problem is reported at its string.
include "no_such_file.trg"  # expect: TRG005@9
include "no_such_folder/*.trg"  # expect: TRG005
include "."  # expect: TRG005
include "TRG101_duplicate_name.txt"  # expect: TRG005
include "*.json"  # expect: TRG005
include ""  # expect: TRG005
