# make demo   set up from nothing, run camera + FER nodes on the built-in photo
# make test   set up from nothing, run the whole test suite
# make bench  set up, print per-stage latency and FPS, and cross-process rates
# make fuzz   set up, send fer_node (its own process) 10,000 malformed images, compressed bombs
#             and poisoned camera_info; prints survival, answered frames, memory per family
VENV ?= .venv
export FER_ROS_VENV := $(abspath $(VENV))

.PHONY: setup demo test bench fuzz clean
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/fer_bringup --frames 60 --output fer_output/annotated.png

test: setup
	$(VENV)/bin/python -m pytest fer_ros/test -q -rs

bench: setup
	$(VENV)/bin/fer_benchmark --plot docs/images/benchmark.png
	@bash scripts/bench_fer_tflite.sh  # fer's int8 TFLite model, from a throwaway venv

fuzz: setup
	$(VENV)/bin/python fer_ros/test/fuzz_fer_node.py --messages 10000

clean:
	rm -rf $(VENV) fer_ros/build fer_output
