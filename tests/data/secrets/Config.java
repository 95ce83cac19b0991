package com.example.orders;

import java.util.Properties;

public final class Config {
    private static final String API_KEY = "Xg7iHCb9RMoC6Mp1uTVssYNOe9DkXBsPG2mZR6QE";
    private static final String JDBC_URL =
        "jdbc:mysql://mysql.internal:3306/orders?user=orders&password=iRlLrBURXc7g!x9";

    public static Properties load() {
        Properties props = new Properties();
        props.setProperty("db.url", JDBC_URL);
        props.setProperty("db.password", "Pw6XYyN65DHVRWXD!");
        props.setProperty("api.key", API_KEY);
        return props;
    }

    public static String sqlServer() {
        return "Server=tcp:orders.database.windows.net,1433;Database=orders;User Id=svc;Password=rZhZmlJ0zSE3Si5f@1;Encrypt=true;";
    }
}
