import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { locale } from "./i18n";
import "./styles.css";

document.documentElement.lang = locale(); // screen readers read the UI in its language

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
