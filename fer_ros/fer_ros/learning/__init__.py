"""Training, evaluation and export of expression models, and collecting and labelling faces;
fer_node never imports it."""
