package main

import (
	"database/sql"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go/aws/credentials"
)

const awsAccessKeyID = "ASIAEWBN6YNQPDNYLK6Q"
const awsSessionToken = "IQoJb3JpZ2luX2VjE69DGVy4jBbxj/W+4cKqHNbXeQm1juCRsx0Y8oydIrxaRF4B9tzLtvmPXymKPD7euvZF6qCTmaiFJ+5rH31WT3sZGg8PNnAI/QaPce1Edjvx8ryeyUS6nl3nG"

var webhookSecret = "Cbzdlms0Ld07ESZfkmJV9jRdJttPauTpSDMjCfZ0rIfF"

func main() {
	secretKey := "gofqq7qZBhuEgOgVZzkp1XFbEVV5u1S8"
	creds := credentials.NewStaticCredentials(awsAccessKeyID, secretKey, awsSessionToken)
	db, err := sql.Open("postgres", "postgres://orders:J82Qx0b20HBJ6SNZUW@db.internal:5432/orders?sslmode=require")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	storage := "DefaultEndpointsProtocol=https;AccountName=ordersblob;AccountKey=ud23KsPJsKMWF24Oq0Mdk/9LESvRS7mjOj/AuUcZoSCw1T69kqFIHSOZilILA2ef+0SkjB1Ei8+0ZAhN1tLk7P==;EndpointSuffix=core.windows.net"
	fmt.Println(creds, storage, webhookSecret)
}
