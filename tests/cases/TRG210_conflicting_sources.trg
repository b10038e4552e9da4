# TRG210: two source declarations that cannot both hold.
secret a = env "A"
secret b = env "B"
source file root="."
source file root="src"  # expect: TRG210@8
source github path="/hook" secret=a
source gitlab path="/hook" token=b  # expect: TRG210@8
source http port=8080
source http port=9090 path="/x" token=a  # expect: TRG210@18
action deploy = shell "./deploy.sh"

on file.changed run deploy
on github.push run deploy
on gitlab.push run deploy
on http.post path="/x" run deploy
