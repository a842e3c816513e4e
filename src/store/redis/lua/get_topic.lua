return describe(topic(GEN))
