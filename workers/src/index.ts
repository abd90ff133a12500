import { app } from "./app.js";
import type { Bindings } from "./env.js";

export default app satisfies ExportedHandler<Bindings>;
