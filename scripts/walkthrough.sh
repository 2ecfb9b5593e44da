#!/usr/bin/env bash
# A newcomer's first session, in a real X window: Xvfb, synthetic clicks and keys (xdotool), and a
# screenshot of the whole screen per step (ImageMagick's import).  Opens the app on its built-in
# example, looks at the Bank tab, runs all (pretraining, then calibration) with short settings,
# opens Results, exports the best match and saves the project through the file dialogs, then
# quits; the exported JSON and the project are read back.  A few minutes on 2 CPU cores.
#
#   apt-get install xvfb xdotool imagemagick
#   bash scripts/walkthrough.sh [OUT_DIR] [--busy]     # default OUT_DIR: docs/walkthrough
#
# --busy keeps another CPU-bound program (a busy loop) running throughout.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=docs/walkthrough
busy=0
for arg in "$@"; do
    case $arg in
        --busy) busy=1 ;;
        *) out=$arg ;;
    esac
done
for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || { echo "walkthrough: needs $tool (apt-get install xvfb xdotool imagemagick)" >&2; exit 2; }
done
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

export DISPLAY=:77
Xvfb :77 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
if [ "$busy" = 1 ]; then
    python3 -c "while True: pass" &
    pids+=($!)
fi

# short settings, so the whole run takes a minute or two; the user's own settings are not touched
cat > "$work/short.toml" <<'EOF'
[pretrain]
iterations = 400
bank_iterations = 400
batch_size = 32
mode = "auto"
eval_every = 100

[calibrate]
iterations = 600
batch_size = 32
eval_every = 50
discriminator_optimizer = "adam"
lr_discriminator = 2e-4
lr_generator = 2e-4
EOF

step=0
shot() {  # shot NAME: the whole screen, as a person sees it
    step=$((step + 1))
    import -window root "$out/$(printf '%02d' $step)-$1.png"
    echo "walkthrough: $(printf '%02d' $step)-$1.png"
}
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.7; }
keys() { xdotool key --clearmodifiers "$@"; sleep 0.7; }     # to the window that has the focus (a dialog)
window_keys() {  # to the main window: with no window manager, focus does not come back by itself
    xdotool windowfocus --sync "$window"; xdotool key --clearmodifiers "$@"; sleep 0.7
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until the command succeeds
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "walkthrough: gave up waiting for $what" >&2; shot "gave-up"; exit 1
}
# the tab bar as the window lays it out at 1280x800 with no window manager (x of each tab's label)
tab() { click "$1" 62; }
TRUE_TAB=55; BANK_TAB=148; PRETRAIN_TAB=236; CALIBRATE_TAB=340; RESULTS_TAB=434

XDG_CONFIG_HOME="$work/config" .venv/bin/magan-gui --preset "$work/short.toml" >"$work/app.log" 2>&1 &
app=$!
pids+=($app)
wait_for 60 "the window" xdotool search --onlyvisible --name "magan-gui"
window=$(xdotool search --onlyvisible --name "magan-gui" | head -1)
xdotool windowmove "$window" 0 0 windowsize "$window" 1280 800
sleep 4   # the example's 10,000 true images
shot "true-images"
tab $BANK_TAB
shot "bank"
window_keys ctrl+shift+r                                     # Run all
sleep 3
tab $PRETRAIN_TAB
shot "pretraining"
autosave="$work/config/magan-gui/autosave.magan"
has_result() { .venv/bin/python -c "import sys; from magan_gui.core.project import Project; \
sys.exit(Project.load('$autosave').result is None)"; }
wait_for 600 "pretraining to end" test -f "$autosave"
sleep 8
shot "calibration"                                           # Run all has moved to the Calibration tab
wait_for 900 "calibration to end" has_result
sleep 1
shot "calibration-done"
tab $RESULTS_TAB
shot "results"
window_keys ctrl+e                                           # Export best-match parameters
sleep 1
shot "export-dialog"
xdotool type --delay 20 "$work/result.json"
keys Return
sleep 1
window_keys ctrl+s                                           # Save project
sleep 1
shot "save-dialog"
xdotool type --delay 20 "$work/calibration.magan"
keys Return
sleep 1
shot "saved"
window_keys ctrl+q                                           # Quit: saved, so no question
wait_for 30 "the app to quit" bash -c "! kill -0 $app"

.venv/bin/python - "$work/result.json" "$work/calibration.magan" <<'EOF'
import json, sys
from magan_gui.core.project import Project
result = json.load(open(sys.argv[1]))
for row in result["parameters"]:
    print(f"walkthrough: exported {row['name']}: best mean {row['mean']:.4g}, std {row['std']:.4g}, "
          f"bias {row.get('bias_in_true_std', float('nan')):+.2f} true std")
project = Project.load(sys.argv[2])
print(f"walkthrough: project reopens with an emulator ({project.emulator is not None}) and a result "
      f"({project.result is not None})")
EOF
if grep -q "Traceback" "$work/app.log"; then
    echo "walkthrough: the app printed a traceback:" >&2; cat "$work/app.log" >&2; exit 1
fi
echo "walkthrough: done, screenshots in $out"
