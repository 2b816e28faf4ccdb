// The operations views: dashboard, users, marketplace and settings (hash routes
// #/dashboard, #/users, #/marketplace, #/settings; the shell routes to them).
export { DashboardView } from "./Dashboard";
export { UsersView } from "./Users";
export { MarketplaceView } from "./Marketplace";
export { SettingsView } from "./Settings";
export { DashboardView as OpsView } from "./Dashboard";
