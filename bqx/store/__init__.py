"""The store on disk: partition paths, the bars dataset and its writer, the write lock."""
